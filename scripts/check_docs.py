"""Checks the docs against the code where that is cheap (part of `make test`).

- every relative link of README.md, ARCHITECTURE.md and docs/*.md resolves;
- every route of the route table (shared/src/routes.rs) is named in the docs, and
  docs/openapi.yaml describes exactly those paths;
- every error code the code can answer (`ApiError::new(..., "code", ...)` and
  `InputError::new(..., "code", ...)`) is named in the docs, and docs/openapi.yaml's
  ErrorCode lists exactly the codes answered (each in docs/api.md's Errors table);
- every environment variable the configuration reads (`env.get/required/number/
  flag("NAME"`) is named in docs/configuration.md.
Usage: python3 scripts/check_docs.py (from the repository root).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    return open(os.path.join(ROOT, path)).read()


# The error types of the envelope; every other identifier an error is built with is a code.
ERROR_TYPES = {"invalid_request_error", "idempotency_error", "signature_error", "api_error"}


def error_code_problems(openapi, api):
    """docs/openapi.yaml's ErrorCode enum against the code: every code an error is
    built with (the first identifier literal among a constructor's first arguments
    that is not a type, and the webhook signature's codes) is listed, and every listed
    code is a literal of the library's own (non-test) sources; each is in
    docs/api.md's Errors section."""
    problems = []
    call = re.compile(r'(?:\b(?:ApiError|Self|InputError)::\w+|\binvalid_param)\(\s*((?:(?:"[^"]*"|[^,()"]+),\s*){0,3})', re.S)
    built, literals = set(), set()
    for folder, _, files in os.walk(os.path.join(ROOT, "shared/src")):
        for name in files:
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            source = open(os.path.join(folder, name)).read().split("#[cfg(test)]")[0]
            literals |= set(re.findall(r'"([a-z]+(?:_[a-z]+)+)"', source))
            for args in call.findall(source):
                codes = [c for c in re.findall(r'"([a-z]+(?:_[a-z]+)+)"', args) if c not in ERROR_TYPES]
                built |= set(codes[:1])
            if name == "signature.rs":
                built |= set(re.findall(r'=> "([a-z]+(?:_[a-z]+)+)"', source))
    if len(built) < 40:
        problems.append(f"found only {len(built)} error codes in the code: the pattern is stale")
    listed = openapi.split("\n    ErrorCode:", 1)[1].split("\n    Error:", 1)[0] if "\n    ErrorCode:" in openapi else ""
    enum = set(re.findall(r"^        - ([a-z_]+)$", listed, re.M))
    for code in sorted(built - enum):
        problems.append(f"error code {code} is not in docs/openapi.yaml's ErrorCode")
    for code in sorted(enum - literals):
        problems.append(f"docs/openapi.yaml's ErrorCode lists {code}, which the code never answers")
    errors = api.split("### Errors", 1)[1].split("\n### ", 1)[0] if "### Errors" in api else ""
    for code in sorted(enum):
        if f"`{code}`" not in errors:
            problems.append(f"error code {code} is not in docs/api.md's Errors table")
    return problems


def main() -> int:
    problems = []
    pages = ["README.md", "ARCHITECTURE.md"] + [
        "docs/" + p for p in sorted(os.listdir(os.path.join(ROOT, "docs"))) if p.endswith(".md")
    ]
    for page in pages:
        base = os.path.dirname(os.path.join(ROOT, page))
        for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", read(page)):
            target = m.group(1)
            if not target.startswith(("http://", "https://", "mailto:")) and not os.path.exists(
                os.path.join(base, target)
            ):
                problems.append(f"{page}: link to {target} does not resolve")
    docs = "\n".join(read(p) for p in pages)
    routes = read("shared/src/routes.rs")
    paths = re.findall(r'path: "(/[^"]*)"', routes)
    if not paths:
        problems.append("found no route in shared/src/routes.rs: the pattern is stale")
    for path in paths:
        if path not in docs:
            problems.append(f"route {path} is in no doc page")
    openapi = read("docs/openapi.yaml")
    described = re.findall(r"^  (/[^:]*):\s*$", openapi.split("\ncomponents:")[0], re.M)
    if sorted(described) != sorted(paths):
        problems.append(f"docs/openapi.yaml describes {sorted(described)}, the route table has {sorted(paths)}")
    sources = []
    for folder, _, files in os.walk(os.path.join(ROOT, "shared/src")):
        sources += [open(os.path.join(folder, f)).read() for f in files if f.endswith(".rs")]
    code = "\n".join(sources)
    constructors = r"(?:InputError::new|(?:ApiError|Self)::(?:new|dependency|invalid_request))"
    answered = re.findall(constructors + r'\(\s*(?:[^,()"]+,\s*){0,2}"([a-z]+(?:_[a-z]+)+)"', code)
    if len(set(answered)) < 15:
        problems.append(f"found only {len(set(answered))} error codes and types in the code: the pattern is stale")
    for error_code in sorted(set(answered)):
        if not re.search(rf"`[^`]*\b{error_code}\b[^`]*`", docs):
            problems.append(f"error code or type {error_code} is in no doc page")
    problems += error_code_problems(openapi, read("docs/api.md"))
    configuration = read("docs/configuration.md")
    variables = set(re.findall(r'env\s*\.\s*(?:get|required|number|flag)\(\s*"([A-Z0-9_]+)"', read("shared/src/config.rs")))
    if len(variables) < 10:
        problems.append("found fewer than 10 environment variables in shared/src/config.rs: the pattern is stale")
    for variable in sorted(set(re.findall(r'env\s*\.\s*(?:get|required|number|flag)\(\s*"([A-Z0-9_]+)"', read("shared/src/config.rs")))):
        if variable not in configuration:
            problems.append(f"environment variable {variable} is not in docs/configuration.md")
    for p in problems:
        print(f"docs: {p}")
    if not problems:
        print(f"docs: {len(pages)} pages, links, routes, error codes and variables agree with the code")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
