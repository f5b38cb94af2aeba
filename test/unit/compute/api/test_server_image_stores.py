"""compute-api's image store wiring: the caller's account with the
caller's token, every other tempauth account anonymously."""
from compute.api.auth import Caller
from compute.api.server import (account_url_maker, image_store_maker,
                                storage_url_maker)

BASE = 'http://127.0.0.1:8080/'


def test_store_sees_other_accounts_anonymously():
    caller = Caller(project='AUTH_test2', user='test2:tester2',
                    groups=(), token='tk2')
    make = image_store_maker(storage_url_maker(BASE),
                             lambda: ['AUTH_test', 'AUTH_test2', 'AUTH_z'],
                             account_url_maker(BASE))
    store = make(caller)
    try:
        assert store.session.storage_url == \
            'http://127.0.0.1:8080/v1/AUTH_test2'
        assert store.session.token == 'tk2'
        assert not store.session.anonymous
        assert [(o.session.storage_url, o.session.anonymous,
                 o.session.token) for o in store.others] == [
            ('http://127.0.0.1:8080/v1/AUTH_test', True, None),
            ('http://127.0.0.1:8080/v1/AUTH_z', True, None)]
    finally:
        store.close()


def test_without_accounts_only_the_callers_own():
    caller = Caller(project='AUTH_test', user='test:tester', groups=(),
                    token='tk')
    store = image_store_maker(storage_url_maker(BASE))(caller)
    assert store.others == []
    store.close()
