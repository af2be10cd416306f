"""Two libvirt "hosts" on one machine and tiny TCG guests, for the real-QEMU tests.

Each host is a libvirtd with private /etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/log/libvirt and /var/cache/libvirt (bind mounts inside ``unshare --mount
--uts``), its own hostname and host UUID, reached by clients on its own unix
socket. Migration streams go over 127.0.0.1 only. Guests boot a Debian kernel
and the initramfs built by tools/e2e-setup.sh; their serial console goes to a
file per guest and host, where the heartbeat of the guest's memory dirtier shows
that it runs. Every process is stopped by its PID.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(os.environ.get('SLM_E2E_DIR', ROOT / '.cache' / 'e2e'))
SETUP = ROOT / 'tools' / 'e2e-setup.sh'

PRIVATE = {  # host-private directory -> where libvirtd expects it
    'etc': '/etc/libvirt',
    'run': '/run/libvirt',
    'lib': '/var/lib/libvirt',
    'log': '/var/log/libvirt',
    'cache': '/var/cache/libvirt',
}

HEARTBEAT = re.compile(r'^hb (\S+) (\d+) (\d+) (\d+)\s*$')


class HarnessError(RuntimeError):
    pass


def missing() -> str | None:
    """Why the real-QEMU tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return 'the real-QEMU tests need root (private libvirtd mounts)'
    for tool in ('libvirtd', 'qemu-system-x86_64', 'unshare'):
        if shutil.which(tool) is None:
            return f'{tool} is not installed; run {SETUP} as root'
    for name in ('vmlinuz', 'initrd.gz'):
        if not (E2E_DIR / name).exists():
            return f'{E2E_DIR / name} is missing; run {SETUP}'
    return None


def _alive(pid: int) -> bool:
    """Running (a zombie, which nobody may reap in a container, counts as gone)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return False


def _kill(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after timeout; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Host:
    """One libvirtd with private state; ``uri`` reaches it from this process."""

    def __init__(self, name: str, base: Path, migration_ports: tuple[int, int]):
        self.name = name
        self.dir = base / name
        self.migration_ports = migration_ports
        self.proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.dir / 'run' / 'libvirt-sock'

    @property
    def uri(self) -> str:
        return f'qemu+unix:///system?socket={self.socket}'

    def start(self) -> None:
        for sub in PRIVATE:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for target in PRIVATE.values():
            os.makedirs(target, exist_ok=True)  # mount points; stay empty outside the daemons
        (self.dir / 'etc' / 'libvirtd.conf').write_text(
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
            f'host_uuid = "{uuidlib.uuid5(uuidlib.NAMESPACE_DNS, self.name + ".slm-e2e")}"\n'
            'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
        lo, hi = self.migration_ports
        (self.dir / 'etc' / 'qemu.conf').write_text(
            'user = "root"\ngroup = "root"\nsecurity_driver = "none"\n'
            'cgroup_controllers = [ ]\nnamespaces = [ ]\nstdio_handler = "file"\n'
            f'migration_port_min = {lo}\nmigration_port_max = {hi}\n')
        binds = '; '.join(f'mount --bind {self.dir / sub} {target}'
                          for sub, target in PRIVATE.items())
        script = (f'set -e; {binds}; hostname {self.name}; '
                  f'exec libvirtd -p /run/libvirt/libvirtd.pid -f /etc/libvirt/libvirtd.conf')
        self.socket.unlink(missing_ok=True)
        log = open(self.dir / 'daemon.out', 'ab')
        self.proc = subprocess.Popen(
            ['unshare', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', script],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise HarnessError(f"libvirtd of {self.name} exited with {self.proc.returncode}: "
                                   f"{(self.dir / 'daemon.out').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise HarnessError(f'libvirtd of {self.name} did not create {self.socket}')
            time.sleep(0.05)

    def qemu_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.dir / 'run' / 'qemu').glob('*.pid'):
            try:
                pids.append(int(pidfile.read_text().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def stop(self) -> None:
        """Destroy the host's guests, stop its libvirtd, kill what is left, by PID."""
        try:
            import libvirt
            conn = libvirt.open(self.uri) if self.socket.exists() else None
        except Exception:
            conn = None
        if conn is not None:
            import threading

            def destroy(dom):
                try:
                    dom.destroy()
                except Exception:
                    pass

            try:  # at once: each takes a second or more under TCG
                workers = [threading.Thread(target=destroy, args=(d,))
                           for d in conn.listAllDomains()]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join(30)
            finally:
                conn.close()
        for pid in self.qemu_pids():
            _kill(pid)
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def log_tail(self, n: int = 4000) -> str:
        path = self.dir / 'log' / 'libvirtd.log'
        return path.read_text(errors='replace')[-n:] if path.exists() else ''


@dataclass(frozen=True)
class GuestSpec:
    name: str
    dirty_mibps: float
    wws_mib: int = 32
    memory_mib: int = 128
    reserve_mib: int = 4

    @property
    def uuid(self) -> str:
        return str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, self.name + '.guest.slm-e2e'))


def console_path(base: Path, guest: str, host: str) -> Path:
    return base / 'console' / f'{guest}.{host}.log'


def domain_xml(spec: GuestSpec, console: Path) -> str:
    cmdline = (f'console=ttyS0 quiet panic=0 slm_name={spec.name} slm_rate={spec.dirty_mibps:g} '
               f'slm_wws={spec.wws_mib} slm_reserve={spec.reserve_mib}')
    return f"""<domain type='qemu'>
  <name>{escape(spec.name)}</name>
  <uuid>{spec.uuid}</uuid>
  <memory unit='MiB'>{spec.memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(E2E_DIR / 'vmlinuz'))}</kernel>
    <initrd>{escape(str(E2E_DIR / 'initrd.gz'))}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{shutil.which('qemu-system-x86_64') or '/usr/bin/qemu-system-x86_64'}</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='{escape(str(console))}' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def heartbeats(path: Path) -> list[tuple[int, int, int]]:
    """(seconds, writes, corrupt pages) of every heartbeat line in a console file."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors='replace').replace('\r', '').splitlines():
        m = HEARTBEAT.match(line.strip())
        if m:
            out.append((int(m.group(2)), int(m.group(3)), int(m.group(4))))
    return out


def console_text(path: Path) -> str:
    return path.read_text(errors='replace') if path.exists() else ''


class Testbed:
    """Two hosts and a set of guests on the first; stop() undoes everything."""

    def __init__(self, base: Path, hosts=('slm-e2e-a', 'slm-e2e-b')):
        self.base = base
        self.hosts = {name: Host(name, base, (49152 + 64 * i, 49152 + 64 * i + 63))
                      for i, name in enumerate(hosts)}
        (base / 'console').mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        try:
            for host in self.hosts.values():
                host.start()
            self._warm_up()
        except BaseException:
            self.stop()
            raise

    def _warm_up(self) -> None:
        """Have each libvirtd probe QEMU now (seconds under TCG), not in a migration."""
        import threading

        import libvirt

        def probe(host):
            conn = libvirt.open(host.uri)
            try:
                conn.getDomainCapabilities(None, 'x86_64', 'pc', 'qemu', 0)
            finally:
                conn.close()

        threads = [threading.Thread(target=probe, args=(h,)) for h in self.hosts.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def uris(self):
        """LibvirtHost of each host for LibvirtCloud: clients and peers on unix sockets,
        memory streams on 127.0.0.1."""
        from tests.e2e.libvirt_cloud import LibvirtHost
        return {name: LibvirtHost(uri=h.uri, migration_uri='tcp://127.0.0.1',
                                  listen_address='127.0.0.1')
                for name, h in self.hosts.items()}

    def dest_xml(self, member: str, xml: str, destination: str) -> str:
        """The guest's XML for the destination: its console goes to a file of that host."""
        import re
        return re.sub(r"(/console/[^/'\"]+)\.[^./'\"]+\.log",
                      lambda m: f'{m.group(1)}.{destination}.log', xml)

    def boot(self, host: str, specs, timeout: float = 120.0) -> None:
        """Start the guests on host and wait until each prints its first heartbeat."""
        import libvirt
        conn = libvirt.open(self.hosts[host].uri)
        try:
            for spec in specs:
                conn.createXML(domain_xml(spec, console_path(self.base, spec.name, host)), 0)
        finally:
            conn.close()
        deadline = time.monotonic() + timeout
        for spec in specs:
            path = console_path(self.base, spec.name, host)
            while not heartbeats(path):
                if time.monotonic() > deadline:
                    raise HarnessError(f'{spec.name} printed no heartbeat within {timeout:.0f} s:'
                                       f'\n{console_text(path)[-2000:]}')
                time.sleep(0.2)

    def destroy(self, host: str, name: str) -> None:
        import libvirt
        conn = libvirt.open(self.hosts[host].uri)
        try:
            conn.lookupByName(name).destroy()
        finally:
            conn.close()

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()
