"""The fast header parser gives exactly what the email parser gives."""
import http.client
import io
import random

import pytest

from objstore.common import concurrency, header_parser

GREEN = concurrency.green_http_client()


def both(raw, module=http.client):
    """(fast, original) results of parsing ``raw``: every attribute,
    defects by kind (they are new objects on each parse)."""
    fast = header_parser._parser_for(module)
    original = fast.fast_original
    return [seen(parse(io.BytesIO(raw))) for parse in (fast, original)]


def seen(message):
    state = dict(vars(message), defects=[type(d) for d in message.defects])
    return type(message), state


CASES = [
    b'\r\n',
    b'',
    b'Host: x\r\n\r\n',
    b'Host: x\r\nContent-Length: 10\r\n\r\nbody',
    b'A:b\r\nA:  c  \r\nA:\r\n\r\n',               # repeats, blanks
    b'X-Object-Meta-Caf\xc3\xa9: \xe2\x82\xac\r\n\r\n',  # raw bytes
    b'A: b\n\n',                                     # bare newlines
    b'A: b\r\nB: c',                                 # ends at EOF
    b'A: b\r\n  folded\r\n\r\n',                     # continuation
    b'A: b\r\nno colon here\r\nC: d\r\n\r\n',
    b': empty name\r\n\r\n',
    b'Name With Space: x\r\n\r\n',
    b'From someone\r\nA: b\r\n\r\n',
    b'A: b\rc\r\n\r\n',                              # lone CR
    b'A: b\x0bc\r\n\r\n', b'A: b\x85c\r\n\r\n', b'A: b\x1cc\r\n\r\n',
    b'A: b\r\r\n\r\n',
    b'A:\tb\r\n\r\n',
    b'a-b_c.d~e!#$%&*+^`|: v\r\n\r\n',
]


@pytest.mark.parametrize('raw', CASES)
@pytest.mark.parametrize('module', [http.client, GREEN],
                         ids=['stdlib', 'green'])
def test_same_message_as_the_email_parser(raw, module):
    fast, original = both(raw, module)
    assert fast == original


def test_random_header_blocks_parse_the_same():
    rng = random.Random(20261122)
    alphabet = (b'abcXYZ-_: \t\r\n\x0b\x85\xe9\x00' +
                bytes(range(0x21, 0x7f)))
    for _ in range(3000):
        lines = []
        for _ in range(rng.randrange(0, 6)):
            if rng.random() < 0.8:
                name = bytes(rng.choice(b'abcXYZ-') for _ in
                             range(rng.randrange(1, 8)))
                value = bytes(rng.choice(alphabet) for _ in
                              range(rng.randrange(0, 12)))
                lines.append(name + b':' + value.replace(b'\n', b''))
            else:
                lines.append(bytes(rng.choice(alphabet) for _ in
                                   range(rng.randrange(0, 12)))
                             .replace(b'\n', b''))
        end = rng.choice([b'\r\n', b'\n'])
        raw = end.join(lines) + end + rng.choice([end, b''])
        fast, original = both(raw)
        assert fast == original, raw


def test_limits_and_errors_are_kept():
    fast = header_parser._parser_for(http.client)
    with pytest.raises(http.client.LineTooLong):
        fast(io.BytesIO(b'A: ' + b'x' * 70000 + b'\r\n\r\n'))
    many = b''.join(b'H%d: v\r\n' % i for i in range(
        http.client._MAXHEADERS + 1)) + b'\r\n'
    with pytest.raises(http.client.HTTPException):
        fast(io.BytesIO(many))


def test_the_body_is_left_unread():
    stream = io.BytesIO(b'A: b\r\n\r\nbody bytes')
    header_parser._parser_for(http.client)(stream)
    assert stream.read() == b'body bytes'


def test_install_is_idempotent_and_reversible_by_hand(monkeypatch):
    monkeypatch.setattr(http.client, 'parse_headers',
                        http.client.parse_headers)
    monkeypatch.setattr(GREEN, 'parse_headers', GREEN.parse_headers)
    header_parser.install(GREEN)
    first = http.client.parse_headers
    header_parser.install(GREEN)
    assert http.client.parse_headers is first
    assert GREEN.parse_headers.fast_original is not None
    msg = GREEN.parse_headers(io.BytesIO(b'A: b\r\n\r\n'))
    assert isinstance(msg, GREEN.HTTPMessage) and msg['A'] == 'b'
