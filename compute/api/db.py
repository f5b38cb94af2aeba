"""The compute API's state: instances and hosts in one SQLite file.

SQLite is the embedded default: one file, WAL mode (readers never wait for
the writer), foreign keys on, a busy timeout so concurrent writers queue
instead of failing, and ``synchronous = FULL`` as in objstore's brokers:
an action the API has answered 202 for must survive a power cut, or the
agent and the database would disagree about what a guest is doing.

Concurrency: every write runs in ``BEGIN IMMEDIATE``, which takes the
write lock before the first read, so a read-check-write sequence (is this
action legal? does this host still have room?) cannot interleave with
another writer's. ``update_instance`` also offers compare-and-set on the
status and task, for callers that read first and write later.

Threads: a sqlite3 connection must not be used by two threads at once,
so a ComputeDB keeps one connection per thread (threading.local), opened
on the thread's first call. One ComputeDB may be shared by all the API's
threads; ``close()`` closes every connection it opened and must only be
called once no thread is using the database any more. Several ComputeDB
objects (or processes) on one file are fine: SQLite's locks arbitrate.

Rows come back as plain dicts so the API can turn them into JSON and the
scheduler can turn host rows into HostState (``host_states``).
"""
import contextlib
import json
import sqlite3
import threading
import time
import uuid as uuidlib

from compute.api import states
from compute.scheduler.hosts import HostState, canonical_arch, \
    canonical_hypervisor

SCHEMA_VERSION = 2
BUSY_TIMEOUT = 10.0
MAX_USER_DATA = 64 * 1024

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hosts (
        name TEXT PRIMARY KEY,
        hypervisor_type TEXT NOT NULL DEFAULT 'qemu',
        architecture TEXT NOT NULL DEFAULT 'x86_64',
        vcpus INTEGER NOT NULL DEFAULT 0 CHECK (vcpus >= 0),
        ram_mb INTEGER NOT NULL DEFAULT 0 CHECK (ram_mb >= 0),
        disk_gb INTEGER NOT NULL DEFAULT 0 CHECK (disk_gb >= 0),
        vcpus_used INTEGER NOT NULL DEFAULT 0 CHECK (vcpus_used >= 0),
        ram_mb_used INTEGER NOT NULL DEFAULT 0 CHECK (ram_mb_used >= 0),
        disk_gb_used INTEGER NOT NULL DEFAULT 0 CHECK (disk_gb_used >= 0),
        cpu_allocation_ratio REAL NOT NULL DEFAULT 4.0,
        ram_allocation_ratio REAL NOT NULL DEFAULT 1.0,
        disk_allocation_ratio REAL NOT NULL DEFAULT 1.0,
        reserved_ram_mb INTEGER NOT NULL DEFAULT 0,
        enabled INTEGER NOT NULL DEFAULT 1,
        last_heartbeat REAL NOT NULL DEFAULT 0,
        agent_url TEXT)""",
    """CREATE TABLE IF NOT EXISTS instances (
        uuid TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        project TEXT NOT NULL,
        user_id TEXT,
        image_id TEXT NOT NULL,
        flavor_name TEXT NOT NULL,
        vcpus INTEGER NOT NULL,
        ram_mb INTEGER NOT NULL,
        disk_gb INTEGER NOT NULL,
        host TEXT REFERENCES hosts (name),
        status TEXT NOT NULL,
        task_state TEXT,
        power_state TEXT NOT NULL DEFAULT 'nostate',
        fault_message TEXT,
        user_data BLOB CHECK (user_data IS NULL
                              OR length(user_data) <= %d),
        key_name TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        deleted_at REAL)""" % MAX_USER_DATA,
    """CREATE INDEX IF NOT EXISTS instances_by_project
        ON instances (project, created_at)""",
    """CREATE INDEX IF NOT EXISTS instances_by_host ON instances (host)""",
)

# Version 2: users' key pairs (a server names one; its public key goes to
# the config drive) and the server metadata a user gave at boot.
_SCHEMA_V2 = (
    """CREATE TABLE IF NOT EXISTS keypairs (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (project, name))""",
)
_V2_COLUMNS = (('instances', 'metadata', "TEXT NOT NULL DEFAULT '{}'"),)

# Instance columns update_instance may set (the rest are fixed at boot).
_UPDATABLE = frozenset(('name', 'host', 'status', 'task_state', 'power_state',
                        'fault_message', 'key_name', 'deleted_at'))
# Host columns a heartbeat may refresh.
_HEARTBEAT_FIELDS = frozenset(('vcpus', 'ram_mb', 'disk_gb', 'vcpus_used',
                               'ram_mb_used', 'disk_gb_used'))
_HOST_RATIOS = ('cpu_allocation_ratio', 'ram_allocation_ratio',
                'disk_allocation_ratio')
_ANY = object()


class KeypairExists(ValueError):
    """A key pair of that name already exists in the project: 409."""


class InstanceNotFound(LookupError):
    """No such instance (or it belongs to another project): 404."""


class HostNotFound(LookupError):
    """No host registered under that name."""


class SchemaError(RuntimeError):
    """The file holds a schema this code does not know (newer or broken)."""


def _user_data(value):
    """`value` as bytes of at most MAX_USER_DATA, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode('utf-8')
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError('user_data must be bytes or text, got %s'
                         % type(value).__name__)
    value = bytes(value)
    if len(value) > MAX_USER_DATA:
        raise ValueError('user_data is %d bytes; the limit is %d'
                         % (len(value), MAX_USER_DATA))
    return value


def _text(value, what):
    """A non-empty string, else ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError('%s must be a non-empty string, got %r'
                         % (what, value))
    return value


def _count(value, what):
    """A whole number >= 0 (bools refused), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError('%s must be a whole number >= 0, got %r'
                         % (what, value))
    return value


def _statuses(expected):
    """One status or an iterable of them, as a checked tuple."""
    if isinstance(expected, str):
        expected = (expected,)
    expected = tuple(expected)
    for status in expected:
        if status not in states.VM_STATES:
            raise ValueError('unknown vm_state %r' % (status,))
    return expected


def _host_row(row):
    """A hosts row as a dict with `enabled` as a bool."""
    record = dict(row)
    record['enabled'] = bool(record['enabled'])
    return record


class ComputeDB:
    """Instances and hosts in the SQLite file at `path` (see module doc).

    `clock` returns epoch seconds for created_at/updated_at/deleted_at;
    tests pass a fake one. `durable=False` uses ``synchronous = NORMAL``
    (commits are not fsynced one by one; a power cut may lose the last
    ones but never corrupts the file): for unit tests and throw-away
    clouds only.
    """

    def __init__(self, path, clock=time.time, durable=True):
        self.path = str(path)
        self._clock = clock
        self._synchronous = 'FULL' if durable else 'NORMAL'
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = []
        try:
            self._create_schema()
        except BaseException:
            self.close()
            raise

    # --- connections and transactions -------------------------------------

    def _connect(self):
        """A new connection with the pragmas every connection needs."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT,
                               isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute('PRAGMA busy_timeout = %d' % int(BUSY_TIMEOUT * 1000))
        mode = conn.execute('PRAGMA journal_mode = WAL').fetchone()[0]
        if mode.lower() != 'wal':
            conn.close()
            raise SchemaError('%s: cannot use WAL mode (got %s)'
                              % (self.path, mode))
        conn.execute('PRAGMA synchronous = %s' % self._synchronous)
        conn.execute('PRAGMA foreign_keys = ON')
        return conn

    def _conn(self):
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self):
        """A BEGIN IMMEDIATE transaction: committed, or rolled back on error.

        sqlite3 errors that mean bad input (a CHECK or foreign key) come
        out as ValueError so callers see one kind of "you asked wrongly".
        A failed COMMIT is rolled back too, so this thread's connection is
        never left inside a transaction that its next call cannot begin.
        """
        conn = self._conn()
        conn.execute('BEGIN IMMEDIATE')
        try:
            yield conn
            conn.execute('COMMIT')
        except sqlite3.IntegrityError as e:
            self._rollback(conn)
            raise ValueError('refused by the database: %s' % e) from None
        except BaseException:
            self._rollback(conn)
            raise

    @staticmethod
    def _rollback(conn):
        """Roll back if SQLite has not already done so itself."""
        if conn.in_transaction:
            conn.execute('ROLLBACK')

    def close(self):
        """Close every connection this object opened (no thread may be
        using the database any more)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _create_schema(self):
        """Create the tables if missing, upgrade a version 1 file in place;
        refuse a schema we do not know."""
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            rows = conn.execute(
                'SELECT version FROM schema_version').fetchall()
            if not rows:
                self._upgrade_to_2(conn)
                conn.execute('INSERT INTO schema_version (version) VALUES (?)',
                             (SCHEMA_VERSION,))
            elif len(rows) == 1 and rows[0][0] == 1:
                self._upgrade_to_2(conn)
                conn.execute('UPDATE schema_version SET version = ?',
                             (SCHEMA_VERSION,))
            elif len(rows) > 1 or rows[0][0] != SCHEMA_VERSION:
                raise SchemaError('%s: schema version %s, this code knows %d'
                                  % (self.path, [r[0] for r in rows],
                                     SCHEMA_VERSION))

    @staticmethod
    def _upgrade_to_2(conn):
        """Add version 2's table and columns (inside the caller's
        transaction, so a crash leaves version 1 intact)."""
        for statement in _SCHEMA_V2:
            conn.execute(statement)
        for table, column, decl in _V2_COLUMNS:
            have = [r[1] for r in conn.execute('PRAGMA table_info(%s)'
                                               % table)]
            if column not in have:
                conn.execute('ALTER TABLE %s ADD COLUMN %s %s'
                             % (table, column, decl))

    def schema_version(self):
        """The version recorded in the file."""
        return self._conn().execute(
            'SELECT version FROM schema_version').fetchone()[0]

    def journal_mode(self):
        """The journal mode SQLite reports for this file ('wal')."""
        return self._conn().execute('PRAGMA journal_mode').fetchone()[0]

    # --- instances -----------------------------------------------------

    def create_instance(self, name, project, image_id, flavor, user=None,
                        user_data=None, key_name=None, uuid=None, host=None,
                        metadata=None):
        """Record a new instance in BUILD/spawning; return its row.

        The flavor's sizes are copied, so editing the flavor config later
        does not change what a running guest was given or holds on its host.
        `flavor` is anything with name, vcpus, ram and disk (flavors.Flavor).
        """
        data = _user_data(user_data)
        now = self._clock()
        record = {
            'uuid': uuid or str(uuidlib.uuid4()),
            'name': _text(name, 'name'),
            'project': _text(project, 'project'),
            'user_id': user,
            'image_id': _text(image_id, 'image_id'),
            'flavor_name': _text(flavor.name, 'flavor name'),
            'vcpus': _count(flavor.vcpus, 'vcpus'),
            'ram_mb': _count(flavor.ram, 'ram'),
            'disk_gb': _count(flavor.disk, 'disk'),
            'host': host,
            'status': states.BUILD,
            'task_state': states.SPAWNING,
            'user_data': data,
            'key_name': key_name,
            'metadata': json.dumps(metadata or {}, sort_keys=True),
            'created_at': now,
            'updated_at': now,
        }
        columns = ', '.join(record)
        marks = ', '.join('?' * len(record))
        with self._write() as conn:
            if self._row(conn, record['uuid'], None, True) is not None:
                raise ValueError('instance %s already exists'
                                 % record['uuid'])
            conn.execute('INSERT INTO instances (%s) VALUES (%s)'
                         % (columns, marks), tuple(record.values()))
            return dict(self._row(conn, record['uuid'], None, True))

    @staticmethod
    def _row(conn, uuid, project, include_deleted):
        """The instance row, or None if missing/other project/deleted."""
        sql = 'SELECT * FROM instances WHERE uuid = ?'
        args = [uuid]
        if project is not None:
            sql += ' AND project = ?'
            args.append(project)
        if not include_deleted:
            sql += ' AND status != ?'
            args.append(states.DELETED)
        return conn.execute(sql, args).fetchone()

    def get_instance(self, uuid, project=None, include_deleted=False):
        """The instance as a dict, or None.

        With `project` set, another project's instance is None, exactly as
        if it did not exist (no hint that the uuid is taken). Deleted
        instances are hidden unless asked for, as Nova's show hides them.
        """
        row = self._row(self._conn(), uuid, project, include_deleted)
        return dict(row) if row is not None else None

    def list_instances(self, project=None, name=None, status=None,
                       host=None, include_deleted=False):
        """Instances, oldest first; None for `project` lists every project.

        `name` matches a substring (case-sensitive), `status` one vm_state
        (asking for DELETED implies include_deleted), `host` exactly.
        """
        sql = 'SELECT * FROM instances WHERE 1'
        args = []
        if project is not None:
            sql += ' AND project = ?'
            args.append(project)
        if name:
            sql += ' AND instr(name, ?) > 0'
            args.append(name)
        if status is not None:
            sql += ' AND status = ?'
            args.append(_statuses(status)[0])
        elif not include_deleted:
            sql += ' AND status != ?'
            args.append(states.DELETED)
        if host is not None:
            sql += ' AND host = ?'
            args.append(host)
        sql += ' ORDER BY created_at, uuid'
        return [dict(r) for r in self._conn().execute(sql, args)]

    def update_instance(self, uuid, expected_status=None,
                        expected_task_state=_ANY, **fields):
        """Set `fields`; return True if the row was updated.

        Compare-and-set: with `expected_status` (one status or several)
        and/or `expected_task_state` (None included), the row is updated
        only if it still holds them, so of two racing writers that read
        the same state exactly one succeeds and the other gets False.
        Setting status DELETED stamps deleted_at unless given.
        """
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError('cannot update %s' % ', '.join(sorted(unknown)))
        if 'status' in fields:
            _statuses(fields['status'])
            if fields['status'] == states.DELETED:
                fields.setdefault('deleted_at', self._clock())
        if fields.get('task_state', None) not in states.TASK_STATES:
            raise ValueError('unknown task_state %r' % (fields['task_state'],))
        fields['updated_at'] = self._clock()
        sql = 'UPDATE instances SET %s WHERE uuid = ?' % ', '.join(
            '%s = ?' % column for column in fields)
        args = list(fields.values()) + [uuid]
        if expected_status is not None:
            wanted = _statuses(expected_status)
            sql += ' AND status IN (%s)' % ', '.join('?' * len(wanted))
            args.extend(wanted)
        if expected_task_state is not _ANY:
            sql += ' AND task_state IS ?'
            args.append(expected_task_state)
        with self._write() as conn:
            return conn.execute(sql, args).rowcount == 1

    def apply_action(self, uuid, project, action):
        """Start a user's action; return the updated instance.

        The state check and the write are one transaction, so two actions
        at once cannot both pass the check. Raises InstanceNotFound (404),
        states.Conflict (409) when the state forbids it. A deleted instance
        is still found here so that a second delete gets a clear 409.
        `project` None acts on any project's instance (for admins).
        """
        with self._write() as conn:
            row = self._row(conn, uuid, project, True)
            if row is None:
                raise InstanceNotFound(uuid)
            status, task = states.begin_action(
                row['status'], row['task_state'], action, uuid)
            conn.execute('UPDATE instances SET status = ?, task_state = ?,'
                         ' updated_at = ? WHERE uuid = ?',
                         (status, task, self._clock(), uuid))
            return dict(self._row(conn, uuid, None, True))

    def record_event(self, uuid, event, fault=None):
        """Apply an agent's report; return the updated instance.

        Raises InstanceNotFound, or ValueError for an event the current
        state does not allow. An event into ERROR keeps `fault` as the
        fault message (other events ignore it); becoming ACTIVE again
        clears an old fault. 'deleted' stamps deleted_at. Releasing the
        host's claim stays the caller's job (see release).
        """
        with self._write() as conn:
            row = self._row(conn, uuid, None, True)
            if row is None:
                raise InstanceNotFound(uuid)
            status, task = states.apply_event(
                row['status'], row['task_state'], event)
            now = self._clock()
            fields = {'status': status, 'task_state': task, 'updated_at': now}
            power = states.EVENT_POWER_STATE[event]
            if power is not None:
                fields['power_state'] = power
            if event in states.FAULT_EVENTS:
                fields['fault_message'] = fault or 'Unknown error'
            elif status == states.ACTIVE:
                fields['fault_message'] = None
            if status == states.DELETED and row['deleted_at'] is None:
                fields['deleted_at'] = now
            conn.execute('UPDATE instances SET %s WHERE uuid = ?' % ', '.join(
                '%s = ?' % c for c in fields), list(fields.values()) + [uuid])
            return dict(self._row(conn, uuid, None, True))

    def place_instance(self, uuid, host_name, check=True):
        """Claim the instance's flavor on `host_name` and set its host.

        One transaction, so an instance is never on a host without its
        claim nor claimed twice; False if it already has a host or (with
        `check`) the host no longer has room for it.
        """
        with self._write() as conn:
            row = self._row(conn, uuid, None, False)
            if row is None:
                raise InstanceNotFound(uuid)
            if row['host'] is not None:
                return False
            if not self._claim(conn, host_name, row['vcpus'], row['ram_mb'],
                               row['disk_gb'], check):
                return False
            conn.execute('UPDATE instances SET host = ?, updated_at = ?'
                         ' WHERE uuid = ?', (host_name, self._clock(), uuid))
            return True

    # --- hosts --------------------------------------------------------------

    def upsert_host(self, name, hypervisor_type='qemu',
                    architecture='x86_64', vcpus=0, ram_mb=0, disk_gb=0,
                    agent_url=None, last_heartbeat=None, **ratios):
        """Register a host or refresh its capacity; return its row.

        Usage counters and the enabled flag survive a re-registration: an
        agent restart must not forget the claims nor undo an operator's
        disable. `ratios` may set cpu/ram/disk_allocation_ratio and
        reserved_ram_mb (checked the way the scheduler checks them).
        """
        unknown = set(ratios) - set(_HOST_RATIOS) - {'reserved_ram_mb'}
        if unknown:
            raise ValueError('unknown host fields %s'
                             % ', '.join(sorted(unknown)))
        state = HostState(name=_text(name, 'host name'),
                          hypervisor_type=hypervisor_type,
                          architecture=architecture,
                          vcpus_total=_count(vcpus, 'vcpus'),
                          ram_mb_total=_count(ram_mb, 'ram_mb'),
                          disk_gb_total=_count(disk_gb, 'disk_gb'),
                          last_heartbeat=last_heartbeat or 0, **ratios)
        record = {
            'name': name,
            'hypervisor_type': canonical_hypervisor(hypervisor_type) or '',
            'architecture': canonical_arch(architecture) or '',
            'vcpus': vcpus, 'ram_mb': ram_mb, 'disk_gb': disk_gb,
            'agent_url': agent_url,
            'last_heartbeat': state.last_heartbeat,
        }
        for field in ratios:
            record[field] = getattr(state, field)
        columns = ', '.join(record)
        updates = ', '.join('%s = excluded.%s' % (c, c)
                            for c in record if c != 'name')
        with self._write() as conn:
            conn.execute('INSERT INTO hosts (%s) VALUES (%s) ON CONFLICT'
                         ' (name) DO UPDATE SET %s'
                         % (columns, ', '.join('?' * len(record)), updates),
                         tuple(record.values()))
            return _host_row(conn.execute(
                'SELECT * FROM hosts WHERE name = ?', (name,)).fetchone())

    def heartbeat(self, name, ts, usage=None):
        """Record that `name` is alive at `ts`; False if it is unknown.

        `usage` may refresh the capacity (vcpus, ram_mb, disk_gb) and the
        *_used counters. Only one party should own the counters: if agents
        report them, their report overwrites the API's claims.
        """
        fields = dict(usage or {})
        unknown = set(fields) - _HEARTBEAT_FIELDS
        if unknown:
            raise ValueError('unknown usage fields %s'
                             % ', '.join(sorted(unknown)))
        for key, value in fields.items():
            _count(value, key)
        fields['last_heartbeat'] = float(ts)
        with self._write() as conn:
            cursor = conn.execute(
                'UPDATE hosts SET %s WHERE name = ?' % ', '.join(
                    '%s = ?' % c for c in fields),
                list(fields.values()) + [name])
            return cursor.rowcount == 1

    def get_host(self, name):
        """The host's row as a dict, or None."""
        row = self._conn().execute('SELECT * FROM hosts WHERE name = ?',
                                   (name,)).fetchone()
        return _host_row(row) if row is not None else None

    def list_hosts(self):
        """Every host, by name."""
        return [_host_row(r) for r in self._conn().execute(
            'SELECT * FROM hosts ORDER BY name')]

    @staticmethod
    def host_state(record):
        """A host row as the scheduler's HostState."""
        return HostState(
            name=record['name'], enabled=record['enabled'],
            last_heartbeat=record['last_heartbeat'],
            hypervisor_type=record['hypervisor_type'],
            architecture=record['architecture'],
            vcpus_total=record['vcpus'], vcpus_used=record['vcpus_used'],
            ram_mb_total=record['ram_mb'], ram_mb_used=record['ram_mb_used'],
            disk_gb_total=record['disk_gb'],
            disk_gb_used=record['disk_gb_used'],
            cpu_allocation_ratio=record['cpu_allocation_ratio'],
            ram_allocation_ratio=record['ram_allocation_ratio'],
            disk_allocation_ratio=record['disk_allocation_ratio'],
            reserved_ram_mb=record['reserved_ram_mb'])

    def host_states(self):
        """Every host as a HostState, ready for scheduler.select_host."""
        return [self.host_state(r) for r in self.list_hosts()]

    def set_host_enabled(self, name, enabled):
        """Enable or disable a host; False if it is unknown."""
        if not isinstance(enabled, bool):
            raise ValueError('enabled must be True or False')
        with self._write() as conn:
            return conn.execute('UPDATE hosts SET enabled = ? WHERE name = ?',
                                (int(enabled), name)).rowcount == 1

    def _claim(self, conn, host_name, vcpus, ram_mb, disk_gb, check):
        """Add usage to a host inside the caller's transaction."""
        for value, what in ((vcpus, 'vcpus'), (ram_mb, 'ram_mb'),
                            (disk_gb, 'disk_gb')):
            _count(value, what)
        row = conn.execute('SELECT * FROM hosts WHERE name = ?',
                           (host_name,)).fetchone()
        if row is None:
            raise HostNotFound(host_name)
        if check:
            host = self.host_state(_host_row(row))
            if (host.free_vcpus < vcpus or host.free_ram_mb < ram_mb
                    or host.free_disk_gb < disk_gb):
                return False
        conn.execute('UPDATE hosts SET vcpus_used = vcpus_used + ?,'
                     ' ram_mb_used = ram_mb_used + ?,'
                     ' disk_gb_used = disk_gb_used + ? WHERE name = ?',
                     (vcpus, ram_mb, disk_gb, host_name))
        return True

    def claim(self, host_name, vcpus, ram_mb, disk_gb, check=True):
        """Reserve resources on a host; False if they no longer fit.

        The scheduler chose the host from a snapshot; checking the free
        capacity again inside the write transaction stops two boots that
        chose the same host at once from overfilling it. `check=False`
        records the usage unconditionally (the scheduler's `claim`).
        Raises HostNotFound.
        """
        with self._write() as conn:
            return self._claim(conn, host_name, vcpus, ram_mb, disk_gb,
                               check)

    def release(self, host_name, vcpus, ram_mb, disk_gb):
        """Give resources back; counters stop at 0 (never negative).

        A release larger than the usage (a double release after a crash)
        would otherwise leave a negative count that makes the host look
        bigger than it is for ever. Raises HostNotFound.
        """
        for value, what in ((vcpus, 'vcpus'), (ram_mb, 'ram_mb'),
                            (disk_gb, 'disk_gb')):
            _count(value, what)
        with self._write() as conn:
            cursor = conn.execute(
                'UPDATE hosts SET vcpus_used = max(0, vcpus_used - ?),'
                ' ram_mb_used = max(0, ram_mb_used - ?),'
                ' disk_gb_used = max(0, disk_gb_used - ?) WHERE name = ?',
                (vcpus, ram_mb, disk_gb, host_name))
            if cursor.rowcount != 1:
                raise HostNotFound(host_name)

    # --- claims of instances ------------------------------------------------

    def unplace_instance(self, uuid):
        """Give back the instance's claim and forget its host; return the
        host name it had, or None if it had none (then nothing is done).

        One transaction, so the claim is released exactly once however
        often this is called (a build that failed, a delete, a recovery
        after a restart may all try).
        """
        with self._write() as conn:
            row = self._row(conn, uuid, None, True)
            if row is None:
                raise InstanceNotFound(uuid)
            host = row['host']
            if host is None:
                return None
            conn.execute(
                'UPDATE hosts SET vcpus_used = max(0, vcpus_used - ?),'
                ' ram_mb_used = max(0, ram_mb_used - ?),'
                ' disk_gb_used = max(0, disk_gb_used - ?) WHERE name = ?',
                (row['vcpus'], row['ram_mb'], row['disk_gb'], host))
            conn.execute('UPDATE instances SET host = NULL, updated_at = ?'
                         ' WHERE uuid = ?', (self._clock(), uuid))
            return host

    def count_instances(self, host_name):
        """How many instances (not deleted) are on the host."""
        return self._conn().execute(
            'SELECT count(*) FROM instances WHERE host = ? AND status != ?',
            (host_name, states.DELETED)).fetchone()[0]

    def busy_instances(self):
        """Every instance with a task in flight (for recovery at start)."""
        return [dict(r) for r in self._conn().execute(
            'SELECT * FROM instances WHERE task_state IS NOT NULL'
            ' ORDER BY created_at, uuid')]

    # --- key pairs ------------------------------------------------------

    def create_keypair(self, project, name, public_key, fingerprint):
        """Record a key pair; KeypairExists if the name is taken."""
        record = {'project': _text(project, 'project'),
                  'name': _text(name, 'key pair name'),
                  'public_key': _text(public_key, 'public key'),
                  'fingerprint': _text(fingerprint, 'fingerprint'),
                  'created_at': self._clock()}
        with self._write() as conn:
            if conn.execute('SELECT 1 FROM keypairs WHERE project = ? AND'
                            ' name = ?', (project, name)).fetchone():
                raise KeypairExists('key pair %s already exists' % name)
            conn.execute('INSERT INTO keypairs (%s) VALUES (%s)'
                         % (', '.join(record), ', '.join('?' * len(record))),
                         tuple(record.values()))
        return record

    def get_keypair(self, project, name):
        """The project's key pair of that name as a dict, or None."""
        row = self._conn().execute(
            'SELECT * FROM keypairs WHERE project = ? AND name = ?',
            (project, name)).fetchone()
        return dict(row) if row is not None else None

    def list_keypairs(self, project):
        """The project's key pairs, by name."""
        return [dict(r) for r in self._conn().execute(
            'SELECT * FROM keypairs WHERE project = ? ORDER BY name',
            (project,))]

    def delete_keypair(self, project, name):
        """Remove a key pair; False if there was none."""
        with self._write() as conn:
            return conn.execute(
                'DELETE FROM keypairs WHERE project = ? AND name = ?',
                (project, name)).rowcount == 1
