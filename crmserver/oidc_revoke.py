"""``/revoke`` (RFC 7009): a client signs out by revoking a refresh token, which revokes
every token of that sign-in. An unknown token is not an error, so the answer tells nothing
about which tokens exist."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from . import oauth_errors as codes
from .oauth_errors import OAuthError, oauth_error_response
from .oidc_context import NO_STORE, SignInContext, client_auth, missing, read_form
from .tokens import secret_hash


async def revoke(ctx: SignInContext, request: Request, segment: str) -> Response:
    """Revoke the refresh token's family, when the token is the authenticated client's."""
    try:
        ctx.authority(request, segment)
        fields = await read_form(request)
        token = fields.get("token", "")
        if not token:
            raise missing("token")
        client = ctx.registered_client(client_auth(request, fields))
        row = ctx.storage.refresh_token(secret_hash(token))
        if row is not None:
            if row["client_id"] != client.client_id:
                raise OAuthError(
                    "unauthorized_client",
                    codes.INVALID_GRANT,
                    "The token was issued to another client.",
                )
            ctx.storage.revoke_token_family(row["family_id"])
    except OAuthError as err:
        return oauth_error_response(err, request)
    return Response(status_code=200, headers=NO_STORE)
