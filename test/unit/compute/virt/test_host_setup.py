"""Unit tests of compute.virt.host_setup: the pure parts and the decisions,
with every system action (apt, daemons, libvirt, /proc) injected."""
import subprocess

import pytest

from compute.virt import host_setup as hs


class FakeRun:
    """Stands in for subprocess.run: answers by the command's first words
    and records every call."""

    def __init__(self, installed=(), answers=None):
        self.installed = set(installed)
        self.answers = dict(answers or {})
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if argv[0] == 'dpkg-query':
            ok = argv[-1] in self.installed
            return subprocess.CompletedProcess(
                argv, 0 if ok else 1,
                stdout='install ok installed' if ok else '', stderr='')
        key = ' '.join(argv[:2])
        queue = self.answers.get(key, [(0, '')])
        code, err = queue.pop(0) if len(queue) > 1 else queue[0]
        if key == 'apt-get install' and code == 0:
            self.installed.update(a for a in argv[2:]
                                  if not a.startswith('-'))
        return subprocess.CompletedProcess(argv, code, stdout='',
                                           stderr=err)

    def commands(self, first):
        return [c for c in self.calls if c[0] == first]


# -- packages ------------------------------------------------------------

def test_nothing_missing_runs_no_apt():
    run = FakeRun(installed=hs.PACKAGES)
    assert hs.ensure_packages(run=run, root=True) is None
    assert run.commands('apt-get') == []


def test_not_root_names_the_missing_packages_and_installs_nothing():
    run = FakeRun(installed=['qemu-utils'])
    reason = hs.ensure_packages(run=run, root=False)
    assert reason.startswith('not root')
    assert 'qemu-system-x86' in reason and 'qemu-utils' not in reason
    assert run.commands('apt-get') == []


def test_root_installs_only_missing_without_update():
    run = FakeRun(installed=['qemu-utils', 'libvirt-clients'])
    assert hs.ensure_packages(run=run, root=True) is None
    (install,) = run.commands('apt-get')
    assert install[:2] == ['apt-get', 'install']
    assert '--no-install-recommends' in install
    assert 'qemu-utils' not in install and 'libvirt-daemon' in install
    assert 'libvirt-daemon-system' not in install


def test_update_only_when_lists_are_missing():
    run = FakeRun(answers={'apt-get install': [
        (100, 'E: Unable to locate package busybox-static'), (0, '')]})
    assert hs.ensure_packages(run=run, root=True) is None
    assert [c[1] for c in run.commands('apt-get')] == \
        ['install', 'update', 'install']


def test_other_install_failure_is_reported_without_update():
    run = FakeRun(answers={'apt-get install': [
        (100, 'E: Could not get lock /var/lib/dpkg/lock-frontend')]})
    reason = hs.ensure_packages(run=run, root=True)
    assert 'Could not get lock' in reason
    assert [c[1] for c in run.commands('apt-get')] == ['install']


def test_failed_update_is_reported():
    run = FakeRun(answers={
        'apt-get install': [(100, 'E: Unable to locate package x')],
        'apt-get update': [(100, 'E: Failed to fetch http://deb/x')]})
    assert hs.ensure_packages(run=run, root=True).startswith(
        'apt-get update failed')


def test_libvirt_daemon_system_is_refused():
    with pytest.raises(ValueError, match='systemd'):
        hs.ensure_packages(run=FakeRun(), root=True,
                           packages=('libvirt-daemon-system',))


def test_apt_missing_is_a_reason_not_a_crash():
    def run(argv, **kwargs):
        if argv[0] == 'apt-get':
            raise FileNotFoundError('apt-get')
        return subprocess.CompletedProcess(argv, 1, stdout='', stderr='')
    assert 'failed' in hs.ensure_packages(run=run, root=True)


# -- qemu.conf -----------------------------------------------------------

SETTINGS = (('user', 'root'), ('group', 'root'))


def test_conf_keys_appended_to_empty_file():
    assert hs.set_conf_keys('', SETTINGS) == \
        'user = "root"\ngroup = "root"\n'


def test_conf_keeps_comments_and_other_settings():
    text = ('# stock file\n#user = "libvirt-qemu"\nvnc_listen = "0.0.0.0"\n'
            'user = "libvirt-qemu"\n')
    new = hs.set_conf_keys(text, SETTINGS)
    lines = new.splitlines()
    assert '#user = "libvirt-qemu"' in lines
    assert 'vnc_listen = "0.0.0.0"' in lines
    assert 'user = "root"' in lines and 'user = "libvirt-qemu"' not in lines
    assert lines.index('user = "root"') == 3     # replaced in place
    assert lines[-1] == 'group = "root"'


def test_conf_duplicates_collapse_to_one():
    new = hs.set_conf_keys('user="a"\n  user = "b"\n', SETTINGS)
    assert new.splitlines().count('user = "root"') == 1
    assert '"a"' not in new and '"b"' not in new


def test_conf_similar_key_untouched():
    new = hs.set_conf_keys('user_namespace = 1\ngroups = 2\n', SETTINGS)
    assert 'user_namespace = 1' in new and 'groups = 2' in new


def test_conf_is_idempotent_on_disk(tmp_path):
    path = tmp_path / 'libvirt' / 'qemu.conf'
    assert hs.ensure_qemu_conf(str(path)) is True
    assert hs.ensure_qemu_conf(str(path)) is False
    assert 'group = "root"' in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ['qemu.conf']


# -- daemons and waiting --------------------------------------------------

def test_daemon_running_reads_pid_file(tmp_path):
    import os
    pid_file = tmp_path / 'x.pid'
    assert hs.daemon_running('python', str(pid_file)) is False
    pid_file.write_text('%d\n' % os.getpid())
    with open('/proc/self/comm') as handle:
        me = handle.read().strip()
    assert hs.daemon_running(me, str(pid_file)) is True
    # a recycled pid belonging to another program does not count
    assert hs.daemon_running('libvirtd', str(pid_file)) is False
    pid_file.write_text('garbage')
    assert hs.daemon_running(me, str(pid_file)) is False


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_for_libvirt_retries_until_it_answers():
    clock, attempts = FakeClock(), []

    class Conn:
        closed = False

        def close(self):
            Conn.closed = True

    def opener(uri):
        attempts.append(uri)
        if len(attempts) < 3:
            raise RuntimeError('Failed to connect socket')
        return Conn()
    hs.wait_for_libvirt('qemu:///system', 5, opener, clock, clock.sleep)
    assert len(attempts) == 3 and Conn.closed


def test_wait_for_libvirt_gives_up_with_the_last_error():
    clock = FakeClock()

    def opener(uri):
        raise RuntimeError('no connection driver available')
    with pytest.raises(hs.HostSetupError,
                       match='within 2 s: no connection driver'):
        hs.wait_for_libvirt('qemu:///system', 2, opener, clock, clock.sleep)
    assert clock.now >= 2


# -- KVM -----------------------------------------------------------------

def _cpuinfo(tmp_path, flags):
    path = tmp_path / 'cpuinfo'
    path.write_text('processor\t: 0\nflags\t\t: fpu %s sse2\n' % flags)
    return str(path)


def test_no_virt_flag_means_qemu_without_booting(tmp_path):
    def boom():
        raise AssertionError('must not boot')
    assert hs.probe_kvm(boom, _cpuinfo(tmp_path, 'cx16'),
                        kvm_dev=str(tmp_path))[0] == 'qemu'


def test_kvm_only_when_the_proof_boot_succeeds(tmp_path):
    cpuinfo, dev = _cpuinfo(tmp_path, 'vmx'), str(tmp_path)
    assert hs.probe_kvm(lambda: True, cpuinfo, dev)[0] == 'kvm'
    assert hs.probe_kvm(lambda: False, cpuinfo, dev)[0] == 'qemu'
    assert hs.probe_kvm(None, cpuinfo, dev)[0] == 'qemu'

    def crashes():
        raise OSError('emulation failure')
    kind, why = hs.probe_kvm(crashes, cpuinfo, dev)
    assert kind == 'qemu' and 'emulation failure' in why


def test_no_dev_kvm_means_qemu(tmp_path):
    kind, why = hs.probe_kvm(lambda: True, _cpuinfo(tmp_path, 'svm'),
                             kvm_dev=str(tmp_path / 'kvm'))
    assert kind == 'qemu' and 'does not exist' in why


# -- the decision --------------------------------------------------------

def _choose(**kw):
    steps = dict(packages=lambda root: None, libvirtd=lambda: [],
                 kvm=lambda: ('qemu', 'no flag'),
                 open_connection=lambda uri: None)
    steps.update(kw)
    return hs.choose_hypervisor(**steps)


class OkConn:
    def close(self):
        pass


def test_root_with_everything_working_gets_system_qemu():
    assert _choose(root=True) == ('qemu:///system', 'qemu', None)
    assert _choose(root=True, kvm=lambda: ('kvm', 'proven')) == \
        ('qemu:///system', 'kvm', None)


def test_root_missing_packages_falls_back_loudly():
    uri, kind, warning = _choose(
        root=True, packages=lambda root: 'apt-get install x failed: boom')
    assert (uri, kind) == ('test:///default', 'test')
    assert 'TEST driver' in warning and 'boom' in warning


def test_root_libvirtd_failure_falls_back_with_the_reason():
    def libvirtd():
        raise hs.HostSetupError('qemu:///system did not answer')
    uri, _kind, warning = _choose(root=True, libvirtd=libvirtd)
    assert uri == 'test:///default'
    assert 'libvirtd did not start' in warning


def test_not_root_uses_a_running_daemon():
    started = []
    uri, kind, warning = _choose(
        root=False, open_connection=lambda uri: OkConn(),
        libvirtd=lambda: started.append(1))
    assert (uri, kind, warning) == ('qemu:///system', 'qemu', None)
    assert started == []


def test_not_root_without_daemon_says_not_root():
    def refuse(uri):
        raise RuntimeError('Failed to connect socket')
    uri, _kind, warning = _choose(
        root=False, open_connection=refuse,
        packages=lambda root: 'not root, cannot install: qemu-system-x86')
    assert uri == 'test:///default'
    assert 'not root' in warning and 'Failed to connect socket' in warning


def test_test_uri_is_taken_as_is():
    assert _choose(prefer_uri='test:///tmp/node.xml', root=True) == \
        ('test:///tmp/node.xml', 'test', None)


def test_other_uri_used_when_it_opens_else_fallback():
    uri = 'qemu:///embed?root=/tmp/x'
    assert _choose(prefer_uri=uri, root=True,
                   open_connection=lambda u: OkConn())[:2] == (uri, 'qemu')

    def refuse(u):
        raise RuntimeError('no event loop')
    got = _choose(prefer_uri=uri, root=True, open_connection=refuse)
    assert got[0] == 'test:///default' and 'no event loop' in got[2]
