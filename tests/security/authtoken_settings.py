"""The console's settings as they were before API tokens were hashed: REST framework's
`authtoken` app installed, which keeps tokens in clear. Used to build an old database."""

from console.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]  # noqa: F405
