"""`registry.register`: who may register themselves, and as what. A self-registered
account is a patient; a validator registers with a validator credential. Clinicians
are patients an organisation credentials; organisation accounts come from the
genesis and from passed proposals, never from registration."""

from __future__ import annotations

from medchain.app._context import Call, Methods
from medchain.app._credentials import CredentialRole, require_credential
from medchain.app._errors import WrongRole
from medchain.app._registry import RegisterArgs, Role, register_identity
from medchain.app._state import State


def register(state: State, call: Call, args: RegisterArgs) -> None:
    if args.role is Role.VALIDATOR:
        require_credential(
            state,
            call.sender,
            (CredentialRole.VALIDATOR,),
            call.block.time_ms,
            "register as a validator",
        )
    elif args.role is not Role.PATIENT:
        raise WrongRole(
            f"an account cannot register itself as a {args.role.value}: a self-registered "
            "account is a patient; an organisation's admin credentials clinicians with "
            "`medchain org credential`, and organisations join by proposal"
        )
    register_identity(state, call, args)


METHODS: Methods = {"registry.register": (RegisterArgs, register)}
