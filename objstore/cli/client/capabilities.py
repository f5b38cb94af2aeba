"""``objstore capabilities``: what the cluster's ``/info`` says it offers
(the limits under ``swift`` and one entry per middleware)."""
import json

import requests

from objstore.cli.client.auth import info_url
from objstore.cli.client.errors import ClientError


def fetch_info(url, timeout=30):
    """/info of the cluster behind a storage or auth ``url``."""
    target = info_url(url)
    try:
        resp = requests.get(target, timeout=timeout)
    except requests.ConnectionError:
        raise ClientError('cannot connect to %s (connection refused)'
                          % target)
    except requests.RequestException as e:
        raise ClientError('GET %s failed: %s' % (target, e))
    if resp.status_code != 200:
        raise ClientError('GET %s: %d %s' % (target, resp.status_code,
                                             resp.reason), resp.status_code)
    try:
        info = resp.json()
    except ValueError:
        raise ClientError('GET %s: the answer is not JSON' % target)
    if not isinstance(info, dict):
        raise ClientError('GET %s: the answer is not a JSON object' % target)
    return info


def format_info(info):
    """Lines: each capability, then its settings indented and sorted;
    the core (``swift``) first."""
    lines = []
    for name in sorted(info, key=lambda n: (n != 'swift', n)):
        lines.append('%s:' % name)
        settings = info[name]
        if isinstance(settings, dict):
            for key in sorted(settings):
                value = settings[key]
                if not isinstance(value, str):
                    value = json.dumps(value, sort_keys=True)
                lines.append('  %s: %s' % (key, value))
    return lines


def run(args, url, out):
    info = fetch_info(url)
    if out.as_json:
        out.json(info)
    else:
        out.lines(format_info(info))
    return 0
