"""Checks the docs against the code where that is cheap (part of `make test`).

- every relative link of README.md, ARCHITECTURE.md and docs/*.md resolves;
- every route of the route table (shared/src/routes.rs) is named in the docs, and
  docs/openapi.yaml describes exactly those paths;
- every error code the code can answer (`ApiError::new(..., "code", ...)` and
  `InputError::new(..., "code", ...)`) is named in the docs, and docs/openapi.yaml's
  ErrorCode lists exactly the codes answered (each in docs/api.md's Errors table);
- every route a doc page, a module header (`//!`) or a function's crate description
  names (`METHOD /path`) is one of the route table's; a function's own header and
  description, and any list of routes (five or more of one function in one
  paragraph or header), name all of that function's routes;
- every environment variable the configuration reads (`env.get/required/number/
  flag("NAME"`, in shared/src/config.rs and config/) is named in docs/configuration.md.
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


# The operators' API's sources: its codes are documented in docs/operations.md, not
# in the merchant API's contract (docs/openapi.yaml).
OPERATIONS_SOURCES = {"operations.rs", "resolution.rs", "operator_events.rs", "operator_show.rs"}


def operations_problems(operations_doc):
    """Every code the operations API answers (its use cases' and the resolution's
    refusals) is in docs/operations.md."""
    problems, codes = [], set()
    for path in ("shared/src/app/operations.rs", "shared/src/domain/resolution.rs",
                 "shared/src/app/operator_events.rs", "shared/src/app/operator_show.rs",
                 "functions/operations/src/lib.rs"):
        source = read(path).split("#[cfg(test)]")[0]
        codes |= set(re.findall(r'(?:=>|(?:invalid_request|rejected)\(\s*\d+,|invalid_param\()\s*"([a-z]+(?:_[a-z]+)+)"', source))
    codes -= ERROR_TYPES | {"resolve_paid", "resolve_closed"}
    if len(codes) < 8:
        problems.append(f"found only {len(codes)} operations error codes: the pattern is stale")
    for code in sorted(codes):
        if f"`{code}`" not in operations_doc:
            problems.append(f"operations error code {code} is not in docs/operations.md")
    return problems


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
            if not name.endswith(".rs") or name == "tests.rs" or name in OPERATIONS_SOURCES:
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


ROUTE_NAMED = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+(/[A-Za-z0-9_{}./-]*[A-Za-z0-9_}])")


def route_table():
    """(method, path, function) of every route of shared/src/routes.rs."""
    routes = read("shared/src/routes.rs")
    return re.findall(
        r'method: "([A-Z]+)",\s*path: "(/[^"]*)",\s*function: Function::(\w+)', routes
    )


def route_of(table, method, path):
    """The route `method path` names ({id} matches any one segment), or None."""
    path = path.rstrip(".")
    for route in table:
        pattern = "^" + re.escape(route[1]).replace(r"\{id\}", "[^/]+") + "$"
        if route[0] == method and re.match(pattern, path):
            return route
    return None


def route_blocks():
    """(where, text) of every text that may name this API's routes: each paragraph
    of the doc pages, each module's `//!` header, each function's description."""
    blocks = []
    pages = ["README.md", "ARCHITECTURE.md"] + [
        "docs/" + p for p in sorted(os.listdir(os.path.join(ROOT, "docs"))) if p.endswith(".md")
    ]
    for page in pages:
        for i, paragraph in enumerate(re.split(r"\n\s*\n", read(page))):
            blocks.append((f"{page} (paragraph {i + 1})", paragraph))
    for top in ["shared/src", "functions", "tools"]:
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, ROOT)
                if name.endswith(".rs"):
                    header = "\n".join(
                        line[3:] for line in open(path).read().splitlines() if line.startswith("//!")
                    )
                    blocks.append((relative, header))
                elif name == "Cargo.toml" and top == "functions":
                    description = re.findall(r'^description = "(.*)"$', open(path).read(), re.M)
                    blocks.append((relative, " ".join(description)))
    return blocks


def route_list_problems():
    table = route_table()
    if len(table) < 9:
        return [f"found only {len(table)} routes in shared/src/routes.rs: the pattern is stale"]
    problems = []
    for where, text in route_blocks():
        named = set()
        for method, path in ROUTE_NAMED.findall(text):
            if path.startswith(("/v1", "/v2", "/_sim/", "/_local/", "/_merchant/", "/runtime/")):
                continue  # Fintoc's API, the simulator's, the local stack's, Lambda's
            if "." in path.rsplit("/", 1)[-1]:
                continue  # a file the local stack serves
            route = route_of(table, method, path)
            if route is None:
                problems.append(f"{where} names {method} {path}, which is no route of shared::routes")
            else:
                named.add(route)
        # A function's own header and description describe all of its API.
        own = re.match(r"functions/([a-z-]+)/(src/lib\.rs|Cargo\.toml)$", where)
        whole = {"".join(w.capitalize() for w in own.group(1).split("-"))} if own else set()
        for function in {r[2] for r in named} | whole:
            of_function = {r for r in table if r[2] == function}
            listed = {r for r in named if r[2] == function}
            if (len(listed) >= 5 or function in whole) and listed != of_function:
                missing = ", ".join(f"{m} {p}" for m, p, _ in sorted(of_function - listed))
                problems.append(f"{where} lists {len(listed)} of {function}'s {len(of_function)} routes: not {missing}")
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
    merchant_paths = [p for p in paths if not p.startswith("/ops/")]
    if sorted(described) != sorted(merchant_paths):
        problems.append(f"docs/openapi.yaml describes {sorted(described)}, the route table has {sorted(merchant_paths)}")
    for path in sorted(set(paths) - set(merchant_paths)):
        if path not in read("docs/operations.md"):
            problems.append(f"operations route {path} is not in docs/operations.md")
    problems += operations_problems(read("docs/operations.md"))
    sources = []
    for folder, _, files in os.walk(os.path.join(ROOT, "shared/src")):
        sources += [open(os.path.join(folder, f)).read() for f in files
                    if f.endswith(".rs") and f not in OPERATIONS_SOURCES]
    code = "\n".join(sources)
    constructors = r"(?:InputError::new|(?:ApiError|Self)::(?:new|dependency|invalid_request))"
    answered = re.findall(constructors + r'\(\s*(?:[^,()"]+,\s*){0,2}"([a-z]+(?:_[a-z]+)+)"', code)
    if len(set(answered)) < 15:
        problems.append(f"found only {len(set(answered))} error codes and types in the code: the pattern is stale")
    for error_code in sorted(set(answered)):
        if not re.search(rf"`[^`]*\b{error_code}\b[^`]*`", docs):
            problems.append(f"error code or type {error_code} is in no doc page")
    problems += error_code_problems(openapi, read("docs/api.md"))
    problems += route_list_problems()
    configuration = read("docs/configuration.md")
    config_sources = read("shared/src/config.rs") + "".join(
        read(os.path.join("shared/src/config", f)) for f in sorted(os.listdir(os.path.join(ROOT, "shared/src/config"))))
    variables = set(re.findall(r'env\s*\.\s*(?:get|required|number|flag)\(\s*"([A-Z0-9_]+)"', config_sources))
    if len(variables) < 10:
        problems.append("found fewer than 10 environment variables in shared/src/config*: the pattern is stale")
    for variable in sorted(variables):
        if variable not in configuration:
            problems.append(f"environment variable {variable} is not in docs/configuration.md")
    for p in problems:
        print(f"docs: {p}")
    if not problems:
        print(f"docs: {len(pages)} pages, links, routes, error codes and variables agree with the code")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
