"""JSON bodies within limits and errors of one shape."""
import io
import json

import pytest

from compute.common import jsonapi


def _env(body, length=None):
    return {'CONTENT_LENGTH': str(len(body) if length is None else length),
            'wsgi.input': io.BytesIO(body)}


def test_read_and_parse():
    assert jsonapi.parse_json(jsonapi.read_body(_env(b'{"a": 1}'))) == \
        {'a': 1}
    assert jsonapi.parse_json(b'', required=False) == {}


@pytest.mark.parametrize('env,status', [
    (_env(b'x' * 11), 413), (_env(b'abc', length=5), 400),
    ({'CONTENT_LENGTH': '-1', 'wsgi.input': io.BytesIO()}, 400),
    # passes str.isdigit(), not int(): was a 500
    ({'CONTENT_LENGTH': '\xb2', 'wsgi.input': io.BytesIO()}, 400)])
def test_bad_bodies(env, status):
    with pytest.raises(jsonapi.HttpError) as err:
        jsonapi.read_body(env, limit=10)
    assert err.value.status == status


@pytest.mark.parametrize('data', [b'{', b'[1]', b'\xff', b''])
def test_not_an_object(data):
    with pytest.raises(jsonapi.HttpError) as err:
        jsonapi.parse_json(data)
    assert err.value.status == 400


@pytest.mark.parametrize('data', [b'{"a": NaN}', b'{"a": Infinity}',
                                  b'{"a": [-Infinity]}'])
def test_nan_and_infinity_are_not_json(data):
    with pytest.raises(jsonapi.HttpError) as err:
        jsonapi.parse_json(data)
    assert err.value.status == 400
    assert 'not a JSON value' in err.value.message


def test_error_response_shape():
    seen = {}

    def start_response(status, headers):
        seen['status'], seen['headers'] = status, dict(headers)
    body = b''.join(jsonapi.respond_error(
        start_response, jsonapi.HttpError(409, 'Cannot stop')))
    assert seen['status'] == '409 Conflict'
    assert json.loads(body) == {'error': {'code': 409,
                                          'message': 'Cannot stop'}}
    assert seen['headers']['Content-Length'] == str(len(body))


def test_no_body_answer():
    seen = {}
    body = jsonapi.respond(lambda s, h: seen.update(s=s, h=dict(h)), 204)
    assert body == [b''] and seen['s'] == '204 No Content'
    assert 'Content-Type' not in seen['h']
