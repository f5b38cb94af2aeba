"""Get a working libvirt + QEMU on this host, or say loudly why not.

`make run` and the end-to-end tests call choose_hypervisor() to decide
which libvirt URI the local agent uses. Our machines are Debian without
systemd as init, so the daemons are started by hand (see
shared/notes/compute-host.md for the measured facts behind each step):

- ensure_packages(): apt-get install QEMU, busybox and the libvirt daemon
  when root and missing. Never libvirt-daemon-system: it pulls in systemd.
- ensure_libvirtd(): the libvirt-qemu user the QEMU driver insists on,
  qemu.conf with user/group root (without it every call re-probes QEMU and
  starting a guest took 45 s), the log directory, then virtlogd and
  libvirtd as daemons, and a bounded wait until qemu:///system answers.
- probe_kvm(): 'kvm' only when a real boot proved it works; a /dev/kvm that
  exists is not proof (ours is paravirtual and crashes normal guests).
- choose_hypervisor(): qemu:///system when all of that works, else the
  libvirt test driver with a warning saying why no guest will really run.

Every step that touches the system takes its side effects as arguments
(run, paths, probes), so the decisions are unit-tested without root.
"""
import errno
import os
import re
import subprocess
import time

from rings.atomic import write_atomically

PACKAGES = ('qemu-system-x86', 'qemu-utils', 'busybox-static',
            'libvirt-daemon', 'libvirt-daemon-driver-qemu',
            'libvirt-clients')
# Pulls in systemd as init on Debian; must never be installed here.
FORBIDDEN_PACKAGES = ('libvirt-daemon-system',)

SYSTEM_URI = 'qemu:///system'
TEST_URI = 'test:///default'
QEMU_CONF = '/etc/libvirt/qemu.conf'
QEMU_CONF_SETTINGS = (('user', 'root'), ('group', 'root'))
QEMU_LOG_DIR = '/var/log/libvirt/qemu'
QEMU_USER = 'libvirt-qemu'
LIBVIRT_HOME = '/var/lib/libvirt'

# (daemon, pid file) in start order: libvirtd hands QEMU's output to
# virtlogd, so virtlogd must be up first.
DAEMONS = (('virtlogd', '/run/virtlogd.pid'),
           ('libvirtd', '/run/libvirtd.pid'))
DAEMON_DIRS = ('/usr/sbin', '/sbin', '/usr/bin', '/bin')
LIBVIRTD_WAIT = 30.0
POLL_INTERVAL = 0.2
APT_TIMEOUT = 900

# apt-get's messages when its package lists are missing or stale: only
# then is an `apt-get update` worth its time.
_NO_LISTS_RE = re.compile(r'Unable to locate package|has no installation '
                          r'candidate|Failed to fetch|404\s+Not Found')


class HostSetupError(Exception):
    """A step of the host setup failed; the message says which and why."""


# -- packages ------------------------------------------------------------

def is_root():
    return os.geteuid() == 0


def missing_packages(packages=PACKAGES, run=subprocess.run):
    """The packages dpkg does not report as installed, in given order."""
    missing = []
    for pkg in packages:
        result = run(['dpkg-query', '-W', '-f=${Status}', pkg],
                     capture_output=True, text=True, check=False)
        if result.returncode != 0 or \
                'install ok installed' not in (result.stdout or ''):
            missing.append(pkg)
    return missing


def _apt_install(packages, run):
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    # --no-install-recommends: libvirt-daemon recommends half the world
    # (lvm2, other hypervisors' drivers), none of which a guest needs.
    return run(['apt-get', 'install', '-y', '-q', '--no-install-recommends']
               + list(packages), capture_output=True, text=True,
               check=False, env=env, timeout=APT_TIMEOUT)


def _apt_update(run):
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    return run(['apt-get', 'update', '-q'], capture_output=True, text=True,
               check=False, env=env, timeout=APT_TIMEOUT)


def _last_line(text):
    lines = [line for line in (text or '').splitlines() if line.strip()]
    return lines[-1].strip() if lines else '(no message)'


def ensure_packages(run=subprocess.run, packages=PACKAGES, root=None):
    """Install whatever of `packages` is missing. Returns None when all
    are installed afterwards, else a one-line reason (never raises for a
    missing permission: not being root is a normal situation, the caller
    falls back to the test driver).

    `apt-get update` runs only when the install failed for lack of package
    lists: it is the slow part and the lists are usually there.
    .ci/system-deps does the same job for build dependencies but always
    updates first and is not installed with the package, hence this copy
    of the idea in Python.
    """
    bad = [pkg for pkg in packages if pkg in FORBIDDEN_PACKAGES]
    if bad:
        raise ValueError('refusing to install %s (it pulls in systemd)'
                         % ', '.join(bad))
    missing = missing_packages(packages, run)
    if not missing:
        return None
    if root is None:
        root = is_root()
    if not root:
        return ('not root, cannot install missing Debian packages: %s'
                % ' '.join(missing))
    try:
        result = _apt_install(missing, run)
        if result.returncode != 0 and _NO_LISTS_RE.search(
                (result.stderr or '') + (result.stdout or '')):
            update = _apt_update(run)
            if update.returncode != 0:
                return 'apt-get update failed: %s' % _last_line(
                    update.stderr or update.stdout)
            result = _apt_install(missing, run)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 'apt-get install %s failed: %s' % (' '.join(missing), err)
    if result.returncode != 0:
        return 'apt-get install %s failed: %s' % (
            ' '.join(missing), _last_line(result.stderr or result.stdout))
    return None


# -- qemu.conf -----------------------------------------------------------

def _setting_re(key):
    """An active (uncommented) `key = ...` line of libvirt's conf syntax."""
    return re.compile(r'^\s*%s\s*=' % re.escape(key))


def set_conf_keys(text, settings):
    """Return libvirt conf `text` with each (key, value) of `settings` set
    to the quoted string value.

    The first active line of a key is replaced in place, later active
    duplicates are dropped (libvirt would take the last one), commented
    examples and every other setting are kept as they are; keys not present
    are appended. Pure, so it is tested without touching /etc.
    """
    lines = text.splitlines()
    for key, value in settings:
        wanted = '%s = "%s"' % (key, value)
        pattern = _setting_re(key)
        kept, found = [], False
        for line in lines:
            if pattern.match(line):
                if not found:
                    kept.append(wanted)
                    found = True
                continue
            kept.append(line)
        if not found:
            kept.append(wanted)
        lines = kept
    return '\n'.join(lines) + '\n'


def _write_atomically(path, text, mode=0o644):
    """``text`` as the whole of ``path``, never half written."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    write_atomically(path, lambda f: f.write(text.encode('utf-8')), mode)


def ensure_qemu_conf(path=QEMU_CONF, settings=QEMU_CONF_SETTINGS):
    """Make `path` hold `settings`; True if the file had to change."""
    try:
        with open(path) as handle:
            old = handle.read()
    except FileNotFoundError:
        old = ''
    new = set_conf_keys(old, settings)
    if new == old:
        return False
    _write_atomically(path, new)
    return True


# -- users, directories, daemons -----------------------------------------

def _run_checked(argv, run):
    try:
        result = run(argv, capture_output=True, text=True, check=False)
    except OSError as err:
        raise HostSetupError('%s: %s' % (argv[0], err)) from None
    if result.returncode != 0:
        raise HostSetupError('%s failed: %s' % (
            ' '.join(argv), _last_line(result.stderr or result.stdout)))


def ensure_qemu_user(run=subprocess.run):
    """The QEMU driver refuses to load without a libvirt-qemu user, even
    when qemu.conf makes QEMU run as root."""
    import grp
    import pwd
    try:
        grp.getgrnam(QEMU_USER)
    except KeyError:
        _run_checked(['groupadd', '--system', QEMU_USER], run)
    try:
        pwd.getpwnam(QEMU_USER)
    except KeyError:
        _run_checked(['useradd', '--system', '-g', QEMU_USER, '-d',
                      LIBVIRT_HOME, '-s', '/usr/sbin/nologin', QEMU_USER],
                     run)


def _pid_alive(pid, name):
    """True if process `pid` exists and its command name is `name` (a
    stale pid file may name a recycled pid of something else)."""
    try:
        os.kill(pid, 0)
    except OSError as err:
        if err.errno != errno.EPERM:
            return False
    try:
        with open('/proc/%d/comm' % pid) as handle:
            return handle.read().strip() == name[:15]
    except OSError:
        return True  # no /proc: trust the signal test


def daemon_running(name, pid_file):
    """Whether the daemon named in `pid_file` is alive."""
    try:
        with open(pid_file) as handle:
            pid = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _pid_alive(pid, name)


def find_daemon(name, dirs=DAEMON_DIRS):
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    raise HostSetupError('%s not found (install the libvirt-daemon '
                         'package)' % name)


def start_daemon(name, pid_file, run=subprocess.run):
    """Start `name -d` unless already running; True if it was started.

    With -d the daemon forks into the background and the command returns
    at once; whether it really came up is seen when the socket answers.
    """
    if daemon_running(name, pid_file):
        return False
    _run_checked([find_daemon(name), '-d'], run)
    return True


def _default_open(uri):
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt.open(uri)


def wait_for_libvirt(uri=SYSTEM_URI, timeout=LIBVIRTD_WAIT,
                     open_connection=_default_open, clock=time.monotonic,
                     sleep=time.sleep):
    """Poll until `uri` opens (and closes) cleanly, at most `timeout` s.

    Raises HostSetupError carrying libvirt's last error message.
    """
    deadline = clock() + timeout
    last = 'no attempt made'
    while True:
        try:
            conn = open_connection(uri)
            if conn is not None:
                conn.close()
                return
            last = 'libvirt.open returned None'
        except Exception as err:  # libvirtError, ImportError, OSError
            last = str(err).strip() or type(err).__name__
        if clock() >= deadline:
            raise HostSetupError('%s did not answer within %g s: %s'
                                 % (uri, timeout, last))
        sleep(POLL_INTERVAL)


def ensure_libvirtd(run=subprocess.run, qemu_conf=QEMU_CONF,
                    timeout=LIBVIRTD_WAIT, open_connection=_default_open):
    """Bring qemu:///system up on a host without systemd (root only).

    Idempotent: running daemons are left alone. Returns a list of notes on
    what was done (for the caller's log). If qemu.conf had to change while
    libvirtd was already running, the daemon still uses the old settings:
    that is reported in the notes rather than restarting someone's daemon.
    Raises HostSetupError when libvirt cannot be made to answer.
    """
    if not is_root():
        raise HostSetupError('starting libvirtd needs root')
    notes = []
    ensure_qemu_user(run)
    conf_changed = ensure_qemu_conf(qemu_conf)
    if conf_changed:
        notes.append('wrote user/group root into %s' % qemu_conf)
    os.makedirs(QEMU_LOG_DIR, exist_ok=True)
    for name, pid_file in DAEMONS:
        if start_daemon(name, pid_file, run):
            notes.append('started %s' % name)
        elif name == 'libvirtd' and conf_changed:
            notes.append('libvirtd was already running: restart it to use '
                         'the new %s' % qemu_conf)
    wait_for_libvirt(SYSTEM_URI, timeout, open_connection)
    return notes


# -- KVM -----------------------------------------------------------------

def cpu_has_virt_flags(cpuinfo_text):
    """vmx (Intel VT-x) or svm (AMD-V) among the CPU flags."""
    for line in cpuinfo_text.splitlines():
        if line.startswith('flags'):
            flags = line.split(':', 1)[-1].split()
            if 'vmx' in flags or 'svm' in flags:
                return True
    return False


def probe_kvm(proof_boot=None, cpuinfo_path='/proc/cpuinfo',
              kvm_dev='/dev/kvm'):
    """Return (domain_type, reason): 'kvm' only when proven, else 'qemu'.

    Cheap on purpose: with no vmx/svm CPU flag (our machines: /dev/kvm is
    paravirtual, see the notes) or no /dev/kvm the answer is 'qemu' without
    booting anything. Otherwise `proof_boot` -- a callable that boots a
    real guest under KVM and returns True once it printed its marker --
    decides; without one KVM is not proven and the answer is 'qemu'.
    """
    try:
        with open(cpuinfo_path) as handle:
            cpuinfo = handle.read()
    except OSError:
        cpuinfo = ''
    if not cpu_has_virt_flags(cpuinfo):
        return 'qemu', 'no vmx/svm CPU flag: hardware virtualisation absent'
    if not os.path.exists(kvm_dev):
        return 'qemu', '%s does not exist' % kvm_dev
    if proof_boot is None:
        return 'qemu', 'KVM not proven (no proof boot given)'
    try:
        proven = bool(proof_boot())
    except Exception as err:
        return 'qemu', 'KVM proof boot failed: %s' % err
    if not proven:
        return 'qemu', 'KVM proof boot printed no marker'
    return 'kvm', 'a guest booted under KVM'


def kvm_proof_boot(kernel, initramfs, marker, timeout=60.0,
                   qemu='qemu-system-x86_64', cmdline='console=ttyS0',
                   accel='kvm'):
    """Boot kernel+initramfs directly in QEMU with KVM (no libvirt) and
    return True if `marker` appears on the serial console within
    `timeout` seconds. The guest is killed either way.

    Use it as probe_kvm's proof_boot (functools.partial). `accel='tcg'`
    exists so tests can check the marker watching where KVM is absent.
    """
    cpu = 'host' if accel == 'kvm' else 'max'
    argv = [qemu, '-accel', accel, '-cpu', cpu, '-m', '256',
            '-nodefaults', '-display', 'none', '-no-reboot',
            '-serial', 'stdio', '-kernel', kernel, '-initrd', initramfs,
            '-append', cmdline]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        return _wait_for_marker(proc, marker.encode(), timeout)
    finally:
        proc.kill()
        proc.wait()


def _wait_for_marker(proc, marker, timeout):
    import selectors
    deadline = time.monotonic() + timeout
    seen = b''
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while marker not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                return False
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return False
            seen = (seen + chunk)[-4096:]
    return True


# -- the decision --------------------------------------------------------

def loud_warning(reason):
    """A banner nobody scrolling past `make run` output can miss."""
    bar = '!' * 72
    return '\n'.join([
        bar,
        '!!! WARNING: no hypervisor available; using libvirt\'s TEST driver',
        '!!! (%s): instances will be "running" but NO guest really boots.'
        % TEST_URI,
        '!!! Reason: %s' % reason,
        bar])


def _try_open(uri, open_connection):
    try:
        wait_for_libvirt(uri, 0, open_connection)
    except HostSetupError as err:
        return str(err)
    return None


def choose_hypervisor(prefer_uri=None, root=None,
                      packages=ensure_packages, libvirtd=ensure_libvirtd,
                      kvm=probe_kvm, open_connection=_default_open):
    """Return (uri, domain_type, warning or None) for the local agent.

    - prefer_uri 'test:...': used as is (domain type 'test').
    - prefer_uri another URI (qemu:///embed, xen, a remote host): used if
      it opens, else the test driver with a warning.
    - None or qemu:///system: as root, install packages and start the
      daemons; as anyone else, use a daemon that already answers.
      Anything failing gives the test driver and a warning with the
      reason. domain_type is 'kvm' only when `kvm()` proved it.
    The steps are arguments so the decision is tested without root.
    """
    if prefer_uri and prefer_uri.startswith('test:'):
        return prefer_uri, 'test', None
    uri = prefer_uri or SYSTEM_URI
    if root is None:
        root = is_root()
    if uri != SYSTEM_URI or not root:
        failure = _try_open(uri, open_connection)
        if failure is not None and not root and uri == SYSTEM_URI:
            reason = packages(root=False) or 'libvirtd is not running'
            failure = 'not root, so nothing installed or started (%s); %s' \
                % (reason, failure)
    else:
        failure = packages(root=True)
        if failure is None:
            try:
                libvirtd()
            except HostSetupError as err:
                failure = 'libvirtd did not start: %s' % err
    if failure is not None:
        return TEST_URI, 'test', loud_warning(failure)
    domain_type, _why = kvm()
    return uri, domain_type, None
