"""`extsvc plan OUT [--simulate FACTS]`: the plan as the executor reads it, or its boot simulated.

Nothing is run, mounted or created: the plan and its bundles are only read
(with the same checks as ``extsvc run``), and a simulation runs the
executor's own supervisor on virtual time (``executor.simulate.boot``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from extsvc.executor.cli.shared import reported_errors


def _plan_text(plan: object) -> str:
    from extsvc.compiler.format.plan import Plan

    assert isinstance(plan, Plan)
    lines = [f"{plan.path} ({plan.arch}, {len(plan.services)} services)"]
    for index, level in enumerate(plan.levels):
        lines.append(f"level {index}:")
        for service_id in level:
            service = plan.services[service_id]
            depends = service.depends
            waits = [
                *(f'service "{s}"' for s in (*depends.services, *depends.host_services)),
                *(f'path "{p}"' for p in depends.paths),
                *([f"network ({', '.join(depends.network)})"] if depends.network else []),
                *(["time sync"] if depends.time else []),
                *([f'configuration "{service.name}"'] if depends.configuration else []),
            ]
            what = f" waits for {', '.join(waits)}" if waits else ""
            lines.append(f"  {service_id} (restart {service.restart.value}){what}")
    return "\n".join(lines) + "\n"


@click.command("plan")
@click.argument("out", type=click.Path(readable=False, path_type=Path))
@click.option(
    "--simulate",
    "facts_file",
    type=click.Path(readable=False, dir_okay=False, path_type=Path),
    help="Simulate the boot under these facts (schema: `extsvc schema --kind facts`).",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plan_command(out: Path, facts_file: Path | None, output: str) -> None:
    """Show the start levels of OUT's plan, or simulate its boot step by step (--simulate)."""
    from extsvc.compiler.format.plan import MACHINE_ARCH, PLAN_FILE, PlanError, load_plan
    from extsvc.executor.errors import from_plan_error

    with reported_errors():
        # The plan may be for another architecture: nothing runs, so that is fine.
        try:
            plan_path = out / PLAN_FILE if out.is_dir() else out
            arch = json.loads(plan_path.read_bytes()).get("arch")
        except (OSError, ValueError, AttributeError):
            arch = None
        machine = next((m for m, a in MACHINE_ARCH.items() if a == arch), None)
        try:
            plan = load_plan(out, machine=machine)
        except PlanError as error:
            raise from_plan_error(error) from None
        if facts_file is None:
            if output == "json":
                levels = [list(level) for level in plan.levels]
                click.echo(json.dumps({"levels": levels}, indent=2))
            else:
                click.echo(_plan_text(plan), nl=False)
            return
        from extsvc.executor.simulate.boot import render_text, simulate, to_json
        from extsvc.executor.simulate.facts import FactsError, load_facts

        try:
            facts = load_facts(facts_file, plan)
        except FactsError as error:
            # As the compiler prints diagnostics: each with its line and caret.
            click.echo("\n".join(d.render() for d in error.diagnostics), err=True)
            raise
        simulation = simulate(plan, facts)
    if output == "json":
        click.echo(json.dumps(to_json(simulation), indent=2, sort_keys=True))
    else:
        click.echo(render_text(simulation), nl=False)
