"""What the objstore CLI functional tests share (a helper module, not a
test file): a clean environment and a run inside a pseudo-terminal."""
import os
import pty
import select
import subprocess


def clean_env(**extra):
    """os.environ without the ST_/OS_/SWIFTCLIENT_ settings a developer's
    shell may carry, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('ST_', 'OS_', 'SWIFTCLIENT_'))}
    env.update(extra)
    return env


def run_in_terminal(argv, cwd, timeout):
    """(exit status, everything written) of ``argv`` run with a
    pseudo-terminal as stdin, stdout and stderr, as a user at a shell
    would: a progress bar shows only there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=clean_env(), close_fds=True)
    os.close(slave)
    seen = b''
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout)
    os.close(master)
    return proc.returncode, seen.decode('utf-8', 'replace')
