"""Typed errors of the executor library; the CLI prints each with its exit code.

Library code raises, never prints or exits (STYLE: "library raises, CLI reports").
The exit codes are DESIGN §7's.
"""

from __future__ import annotations

from extsvc.compiler.format.exitcodes import EXIT_ENVIRONMENT, EXIT_INVALID_INPUT, EXIT_USAGE


class ExecutorError(Exception):
    """Base of every error the CLI reports."""

    exit_code = EXIT_INVALID_INPUT


class InvalidInputError(ExecutorError):
    """A plan, bundle or host-services file that cannot be used as given (exit 1)."""

    exit_code = EXIT_INVALID_INPUT


class PlanError(InvalidInputError):
    """plan.json is missing, malformed, fails its schema, or its bundles changed."""


class UnknownServiceError(InvalidInputError):
    """A control request named a service the running plan does not have."""


class UsageError(ExecutorError):
    """A command line that cannot be used as given (exit 2), said in one line."""

    exit_code = EXIT_USAGE


class EnvironmentMissingError(ExecutorError):
    """The host lacks something the executor needs (exit 3); the message says the fix."""

    exit_code = EXIT_ENVIRONMENT


class DaemonUnreachableError(EnvironmentMissingError):
    """No `extsvc run` is listening on the control socket."""


class LaunchError(ExecutorError):
    """A container could not be started (mount, config or runc failure)."""


def from_plan_error(error: Exception) -> Exception:
    """What a command raises for the shared loader's PlanError: the executor's, or the
    PermissionError it came from, which every command says in one form (extsvc.cli).
    The daemon's own plan loading keeps PlanError: a reload never raises out of it."""
    if isinstance(error.__cause__, PermissionError):
        return error.__cause__
    return PlanError(str(error))
