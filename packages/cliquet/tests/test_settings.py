"""Settings: prefixes, environment overrides, start-up failures."""

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

import cliquet
from cliquet.settings import Setting, as_duration, as_int, declare_settings
from cliquet.testing import make_config
from cliquet.testing.app import TEST_SECRET


def build(settings, monkeypatch=None, env=None, project_name="myproject"):
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET, **settings})
    cliquet.initialize(config, "1.0", project_name=project_name)
    config.make_wsgi_app()
    return config.registry.settings


@pytest.mark.parametrize("key", ["cliquet.paginate_by", "myproject.paginate_by", "paginate_by"])
def test_setting_with_or_without_prefix(key):
    assert build({key: "12"})["cliquet.paginate_by"] == 12


def test_environment_overrides_ini(monkeypatch):
    settings = build({"cliquet.paginate_by": "12"}, monkeypatch, {"CLIQUET_PAGINATE_BY": "7"})
    assert settings["cliquet.paginate_by"] == 7


def test_project_environment_variable(monkeypatch):
    settings = build({}, monkeypatch, {"MYPROJECT_BATCH_MAX_REQUESTS": "3"})
    assert settings["cliquet.batch_max_requests"] == 3


def test_default_settings_of_initialize():
    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET})
    cliquet.initialize(config, "1.0", default_settings={"paginate_by": 5})
    assert config.registry.settings["cliquet.paginate_by"] == 5


def test_unknown_prefixed_setting_fails_naming_it():
    with pytest.raises(ConfigurationError, match="cliquet.paginate_bye"):
        build({"cliquet.paginate_bye": "1"})
    with pytest.raises(ConfigurationError, match="myproject.colour"):
        build({"myproject.colour": "1"})


@pytest.mark.parametrize("key,value,expected", [
    ("cliquet.paginate_by", "many", "cliquet.paginate_by"),
    ("cliquet.readonly", "perhaps", "cliquet.readonly"),
    ("cliquet.eos", "next tuesday", "cliquet.eos"),
])
def test_invalid_values_fail_naming_the_setting(key, value, expected):
    with pytest.raises(ConfigurationError, match=expected):
        build({key: value})


def test_invalid_backend_fails_naming_the_setting():
    with pytest.raises(ConfigurationError, match="cliquet.storage_backend"):
        build({"cliquet.storage_backend": "cliquet.nothing.here"})
    with pytest.raises(ConfigurationError, match="cliquet.cache_backend.*load_from_config"):
        build({"cliquet.cache_backend": "cliquet.utils"})
    with pytest.raises(ConfigurationError, match="cliquet.permission_backend.*not a PermissionBase"):
        build({"cliquet.permission_backend": "cliquet.cache.memory"})


def test_missing_secret_fails():
    config = Configurator(settings={})
    with pytest.raises(ConfigurationError, match="userid_hmac_secret"):
        cliquet.initialize(config, "1.0")


def test_packages_declare_their_settings():
    config = make_config(**{"myplugin_timeout": "5"})
    declare_settings(config, {"myplugin_timeout": Setting(1, as_int, doc="x")}, environ={})
    assert config.registry.settings["cliquet.myplugin_timeout"] == 5


@pytest.mark.parametrize("text,seconds", [("30", 30), ("30s", 30), ("15m", 900), ("12h", 43200),
                                          ("7d", 604800), ("1w", 604800), ("250ms", 0.25)])
def test_durations(text, seconds):
    assert as_duration(text) == seconds


def test_invalid_duration():
    with pytest.raises(ValueError):
        as_duration("soon")


def test_including_twice_is_harmless():
    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET})
    config.include("cliquet")
    config.include("cliquet")
    config.make_wsgi_app()


def test_custom_security_policy():
    import webtest

    class Everybody:
        def __init__(self, settings):
            self.settings = settings

        def identity(self, request):
            return {"userid": "robot"}

        def authenticated_userid(self, request):
            return "robot"

        def permits(self, request, context, permission):
            return True

        def remember(self, request, userid, **kw):
            return []

        def forget(self, request, **kw):
            return []

    import sys
    import types

    module = types.ModuleType("custom_policy_for_test")
    module.Everybody = Everybody
    sys.modules[module.__name__] = module
    config = Configurator(settings={"cliquet.security_policy": "custom_policy_for_test.Everybody"})
    cliquet.initialize(config, "1.0")
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/v1/").json["user"]["id"] == "robot"
