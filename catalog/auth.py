"""API keys for writes and per-user endpoints, and the throttle on anonymous reads.

Kept apart from the views: DRF imports these classes from settings while it builds
`APIView`, so this module must not import `rest_framework.views` or the views.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle

from .models import ApiKey

SCHEME = "Api-Key"


@dataclass(frozen=True)
class ApiKeyUser:
    """The caller behind a valid API key (a front end or service, not a person)."""

    key_name: str
    is_authenticated: bool = True
    is_anonymous: bool = False

    def __str__(self) -> str:
        return f"api-key:{self.key_name}"


def raw_key(request) -> str | None:
    """Return the key sent as `Authorization: Api-Key <key>` or `X-Api-Key: <key>`."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == SCHEME.lower():
        return value.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticate a request by an API key; requests without one stay anonymous."""

    def authenticate(self, request):
        """Return (ApiKeyUser, ApiKey) for a valid key, None when no key was sent."""
        raw = raw_key(request)
        if raw is None:
            return None
        key = ApiKey.objects.filter(hashed_key=ApiKey.hash(raw), active=True).first()
        if key is None:
            raise exceptions.AuthenticationFailed(
                "Invalid or revoked API key: create one with `manage.py create_api_key NAME`.")
        return ApiKeyUser(key.name), key

    def authenticate_header(self, request) -> str:
        """Answer 401 (not 403) to unauthenticated requests, naming the scheme."""
        return SCHEME


class HasApiKey(BasePermission):
    """Allow only requests that carry a valid API key."""

    message = (f"This endpoint needs an API key: send 'Authorization: {SCHEME} <key>' "
               "or 'X-Api-Key: <key>'.")

    def has_permission(self, request, view) -> bool:
        """Return True when the request was authenticated by an API key."""
        return isinstance(request.auth, ApiKey)


def is_privileged(request) -> bool:
    """True for a request with a valid API key, or from an active staff user's session.

    Only these may see unpublished or unfinished videos (the `published` search filter,
    detail pages of drafts). The staff user is the one logged in to Django's session (the
    admin): DRF's `request.user` comes from API keys alone, and DRF overwrites the Django
    request's `user` with it, so the session is read again here.
    """
    if isinstance(getattr(request, "auth", None), ApiKey):
        return True
    django_request = getattr(request, "_request", request)
    if not hasattr(django_request, "session"):
        return False
    user = get_user(django_request)
    return bool(user.is_active and user.is_staff)


class ReadThrottle(AnonRateThrottle):
    """Throttle anonymous callers by IP; the rate is read from settings on each request."""

    def get_rate(self) -> str | None:
        """Return REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['anon'] as configured now."""
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        """Re-read the rate (settings may change in tests) and apply it."""
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
