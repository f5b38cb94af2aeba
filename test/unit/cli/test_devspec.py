"""Device strings and search values typed at objstore-ring-builder."""
import pytest

from objstore.cli.devspec import (
    DevSpecError, dev_from_flags, format_dev, format_ip, meta_matches,
    parse_add_value, parse_change_value, parse_search_value, parse_weight,
    split_field_flags)


def dev(**fields):
    base = {'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': 6200,
            'replication_ip': '127.0.0.1', 'replication_port': 6200,
            'device': 'sdb1', 'meta': ''}
    base.update(fields)
    return base


# -- add values --------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('r1z1-127.0.0.1:6200/sdb1', dev()),
    ('z1-127.0.0.1:6200/sdb1', dev()),                      # region 1
    ('r2z3-127.0.0.1:6200/sdb1', dev(region=2, zone=3)),
    ('r10z20-10.1.2.3:6000/d1', dev(region=10, zone=20, ip='10.1.2.3',
                                   replication_ip='10.1.2.3', port=6000,
                                   replication_port=6000, device='d1')),
    ('r1z1-127.0.0.1:6200R127.0.0.2:6300/sdb1_meta text',
     dev(replication_ip='127.0.0.2', replication_port=6300,
         meta='meta text')),
    ('r1z1-127.0.0.1:6200R127.0.0.2/sdb1',                  # same port
     dev(replication_ip='127.0.0.2')),
    ('r1z1-[::1]:6200/sdb1', dev(ip='::1', replication_ip='::1')),
    ('r1z1-[fe80:0::0001]:6200R[::2]:6300/sdb1',            # normalised
     dev(ip='fe80::1', replication_ip='::2', replication_port=6300)),
    ('r1z1-127.0.0.1:6200/sdb1_a_b_c', dev(meta='a_b_c')),
    ('r1z1-127.0.0.1:6200/sdb1_"snet: 5.6.7.8"', dev(meta='snet: 5.6.7.8')),
    ('r1z1-127.0.0.1:6200/sdb1_', dev(meta='')),
    ('r1z1-127.0.0.1:6200/sdb1_ spaced _', dev(meta=' spaced _')),
    ('r1z1-storage-1.example.com:6200/sdb1',
     dev(ip='storage-1.example.com', replication_ip='storage-1.example.com')),
    ('r0z0-127.0.0.1:1/sdb1', dev(region=0, zone=0, port=1,
                                  replication_port=1)),
])
def test_parse_add_value(text, expected):
    assert parse_add_value(text) == expected


@pytest.mark.parametrize('text', [
    '',
    'sdb1',
    'r1-127.0.0.1:6200/sdb1',              # no zone
    'rz1-127.0.0.1:6200/sdb1',             # region without number
    'r1zx-127.0.0.1:6200/sdb1',            # zone not a number
    'r1z1127.0.0.1:6200/sdb1',             # no "-"
    'r1z1-:6200/sdb1',                     # no ip
    'r1z1-127.0.0.1/sdb1',                 # no port
    'r1z1-127.0.0.1:/sdb1',                # empty port
    'r1z1-127.0.0.1:0/sdb1',               # port out of range
    'r1z1-127.0.0.1:65536/sdb1',
    'r1z1-127.0.0.1:6200',                 # no device
    'r1z1-127.0.0.1:6200/',                # empty device
    'r1z1-127.0.0.1:6200/_meta',           # empty device, meta only
    'r1z1-127.0.0.1:6200/sd b1',           # space in device name
    'r1z1-127.0.0.1:6200sdb1',             # junk after port
    'r1z1-127.0.0.1:6200R/sdb1',           # "R" with nothing
    'r1z1-127.0.0.1:6200R127.0.0.2:x/sdb1',
    'r1z1-256.0.0.1:6200/sdb1',            # bad IPv4
    'r1z1-10.0.0:6200/sdb1',               # partial IPv4
    'r1z1-::1:6200/sdb1',                  # IPv6 without brackets
    'r1z1-[::1:6200/sdb1',                 # missing "]"
    'r1z1-[nope]:6200/sdb1',               # not IPv6
    'r1z1-[127.0.0.1]:6200/sdb1',          # brackets are for IPv6
    'd1r1z1-127.0.0.1:6200/sdb1',          # ids are not chosen here
    ' r1z1-127.0.0.1:6200/sdb1',
])
def test_parse_add_value_rejects(text):
    with pytest.raises(DevSpecError) as info:
        parse_add_value(text)
    assert isinstance(info.value, ValueError)
    assert '\n' not in str(info.value)
    assert str(info.value)


def test_add_error_names_the_input():
    with pytest.raises(DevSpecError, match='r1z1-127.0.0.1:6200'):
        parse_add_value('r1z1-127.0.0.1:6200')


# -- search values -----------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('d3', {'id': 3}),
    ('z2', {'zone': 2}),
    ('r1', {'region': 1}),
    ('r1z2', {'region': 1, 'zone': 2}),
    ('d0r1z2', {'id': 0, 'region': 1, 'zone': 2}),
    ('r1z2-10.0.0.1', {'region': 1, 'zone': 2, 'ip': '10.0.0.1'}),
    ('10.0.0.1', {'ip': '10.0.0.1'}),
    ('-10.0.0.1', {'ip': '10.0.0.1'}),
    ('10.0.0.1:6200', {'ip': '10.0.0.1', 'port': 6200}),
    ('z1:5678', {'zone': 1, 'port': 5678}),
    (':5678', {'port': 5678}),
    ('/sdb1', {'device': 'sdb1'}),
    ('_ssd', {'meta': 'ssd'}),
    ('_"snet: 5.6.7.8"', {'meta': 'snet: 5.6.7.8'}),
    ('/sdb1_a_b', {'device': 'sdb1', 'meta': 'a_b'}),
    ('[::1]', {'ip': '::1'}),
    ('z1-[::1]:6200', {'zone': 1, 'ip': '::1', 'port': 6200}),
    ('R10.0.0.2', {'replication_ip': '10.0.0.2'}),
    ('R:6300', {'replication_port': 6300}),
    ('R[::2]:6300', {'replication_ip': '::2', 'replication_port': 6300}),
    ('host-a.example', {'ip': 'host-a.example'}),
    ('d74r1z1-1.2.3.4:5678R5.6.7.8:9/sdb1_"snet: x"',
     {'id': 74, 'region': 1, 'zone': 1, 'ip': '1.2.3.4', 'port': 5678,
      'replication_ip': '5.6.7.8', 'replication_port': 9,
      'device': 'sdb1', 'meta': 'snet: x'}),
])
def test_parse_search_value(text, expected):
    assert parse_search_value(text) == expected


@pytest.mark.parametrize('text', [
    '',
    'z1host',            # ip after zone needs "-"
    'd1x',
    'z1-',
    'z1-:6200',
    ':',
    ':port',
    ':70000',
    'R',
    'R/sdb1',
    '/',
    '10.0.0.1/',
    '10.0.0.300',
    '::1',               # IPv6 needs brackets
    '[::1',
    '10.0.0.1 junk',
])
def test_parse_search_value_rejects(text):
    with pytest.raises(DevSpecError):
        parse_search_value(text)


def test_bare_word_is_a_host_name():
    # it only fails later, when no device has that address
    assert parse_search_value('dx3') == {'ip': 'dx3'}
    assert parse_search_value('sdb1') == {'ip': 'sdb1'}


def test_search_value_round_trips_format_dev():
    d = dev(id=7, ip='::1', replication_ip='10.0.0.9', replication_port=6300,
            meta='rack 4_b', weight=100.0)
    text = format_dev(d)
    assert text == 'd7r1z1-[::1]:6200R10.0.0.9:6300/sdb1_"rack 4_b"'
    crit = parse_search_value(text)
    assert all(d[k] == v for k, v in crit.items())
    assert set(crit) == {'id', 'region', 'zone', 'ip', 'port',
                         'replication_ip', 'replication_port', 'device',
                         'meta'}


def test_format_ip():
    assert format_ip('10.0.0.1') == '10.0.0.1'
    assert format_ip('fe80::1') == '[fe80::1]'


def test_meta_matches_substring():
    d = dev(meta='ssd rack4')
    assert meta_matches(d, {'meta': 'rack'})
    assert meta_matches(d, {'zone': 9})          # no meta criterion
    assert meta_matches(d, {'meta': ''})
    assert not meta_matches(d, {'meta': 'hdd'})


# -- set_info values ---------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('10.0.0.5:6201', {'ip': '10.0.0.5', 'port': 6201}),
    ('10.0.0.5', {'ip': '10.0.0.5'}),
    (':6201', {'port': 6201}),
    ('R10.0.0.6:6301', {'replication_ip': '10.0.0.6',
                        'replication_port': 6301}),
    ('/sdc', {'device': 'sdc'}),
    ('_new meta', {'meta': 'new meta'}),
    ('store-2', {'ip': 'store-2'}),             # a host name
    ('[::5]:6201R[::6]:6301/sdc_m', {'ip': '::5', 'port': 6201,
                                     'replication_ip': '::6',
                                     'replication_port': 6301,
                                     'device': 'sdc', 'meta': 'm'}),
])
def test_parse_change_value(text, expected):
    assert parse_change_value(text) == expected


@pytest.mark.parametrize('text', ['', 'R', ':x', '10.0.0.5:6201 x', '/',
                                  'z1-10.0.0.1', '10.0.0', '/sd b'])
def test_parse_change_value_rejects(text):
    with pytest.raises(DevSpecError):
        parse_change_value(text)


# -- weights and flags -------------------------------------------------------

@pytest.mark.parametrize('text, expected', [('100', 100.0), ('0', 0.0),
                                            ('2.5', 2.5), ('1e2', 100.0)])
def test_parse_weight(text, expected):
    assert parse_weight(text) == expected


@pytest.mark.parametrize('text', ['-1', 'heavy', '', 'nan', 'inf', None])
def test_parse_weight_rejects(text):
    with pytest.raises(DevSpecError):
        parse_weight(text)


def test_split_field_flags():
    flags, rest = split_field_flags(
        ['d1', '--zone', '2', '--ip=[::1]', '--replication_port', '6300',
         '--meta', 'a b', '--weight', '5', 'tail'])
    assert flags == {'zone': 2, 'ip': '::1', 'replication_port': 6300,
                     'meta': 'a b', 'weight': 5.0}
    assert rest == ['d1', 'tail']


@pytest.mark.parametrize('args', [
    ['--colour', 'red'],
    ['--zone'],
    ['--zone', 'two'],
    ['--zone', '-1'],
    ['--port', '0'],
    ['--replication-port', '70000'],
    ['--ip', '10.0.0'],
    ['--ip', 'not an ip'],
    ['--device', 'a/b'],
    ['--device', ''],
    ['--weight', '-3'],
    ['--zone', '1', '--zone', '2'],
])
def test_split_field_flags_rejects(args):
    with pytest.raises(DevSpecError):
        split_field_flags(args)


def test_dev_from_flags_defaults():
    flags, _ = split_field_flags(['--zone', '1', '--ip', '10.0.0.1',
                                  '--port', '6200', '--device', 'sdb1',
                                  '--weight', '100'])
    assert dev_from_flags(flags) == dict(
        dev(ip='10.0.0.1', replication_ip='10.0.0.1'), weight=100.0)


def test_dev_from_flags_names_what_is_missing():
    with pytest.raises(DevSpecError, match='--device.*--weight'):
        dev_from_flags({'zone': 1, 'ip': '10.0.0.1', 'port': 6200})


def test_format_dev_leaves_out_what_adds_nothing():
    dev = {'id': 6, 'region': 1, 'zone': 3, 'ip': '10.0.3.9', 'port': 6200,
           'replication_ip': '10.0.3.9', 'replication_port': 6200,
           'device': 'sdc', 'meta': ''}
    assert format_dev(dev) == 'd6r1z3-10.0.3.9:6200/sdc'
    dev.update(replication_port=6300, meta='ssd')
    assert format_dev(dev) == 'd6r1z3-10.0.3.9:6200R10.0.3.9:6300/sdc_"ssd"'
