"""Import boundaries: only integrations/ speaks to vendors.

- `twilio` is imported only under integrations/twilio/.
- app/ never imports a vendor module (integrations.dms.<vendor>, integrations.twilio.gateway
  or .sandbox); it depends on the ports (`base.py`) and the registries only.
- integrations/ never imports app/.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_MAY_IMPORT = {
    "integrations.dms.base",
    "integrations.dms.registry",
    "integrations.dms",
    "integrations.twilio.base",
    "integrations.twilio.numbers",
    "integrations.twilio.webhooks",
    "integrations.twilio",
}
# Wiring points that choose concrete vendors: the composition root, nothing else.
COMPOSITION_ROOTS = {"app/wiring.py", "app/cli.py", "app/demo.py"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
            found.append((node.lineno, node.module))
    return found


def problems() -> list[str]:
    found: list[str] = []
    for path in sorted(ROOT.glob("app/**/*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, module in imported_modules(path):
            if module == "twilio" or module.startswith("twilio."):
                found.append(f"{rel}:{line}: imports {module}; only integrations/twilio may")
            if module.startswith("integrations.") and rel not in COMPOSITION_ROOTS:
                top = ".".join(module.split(".")[:3])
                if top not in APP_MAY_IMPORT and module not in APP_MAY_IMPORT:
                    found.append(
                        f"{rel}:{line}: imports {module}; app/ may use only the ports "
                        f"({', '.join(sorted(APP_MAY_IMPORT))})"
                    )
    for path in sorted(ROOT.glob("integrations/**/*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, module in imported_modules(path):
            if module == "app" or module.startswith("app."):
                found.append(f"{rel}:{line}: imports {module}; integrations/ must not import app/")
            if (module == "twilio" or module.startswith("twilio.")) and not rel.startswith(
                "integrations/twilio/"
            ):
                found.append(f"{rel}:{line}: imports {module}; only integrations/twilio may")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem)
    print(f"import boundaries: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
