"""Checks that template.yaml's tables match the definitions the code uses locally.

Usage: python check_template_table.py template.yaml '<json from local-table --print-definition>'
(the JSON maps each table's logical id to its definition; a property the code gives
as null must be absent from the template: the idempotency table has no stream).
Runs in the SAM CLI's virtualenv (it uses cfn-lint's YAML loader for !Ref & co).
"""
import json
import sys

from cfnlint.decode import cfn_yaml


def main() -> int:
    template = cfn_yaml.load(sys.argv[1])
    expected_tables = json.loads(sys.argv[2])
    tables = {
        name: r for name, r in template["Resources"].items() if r.get("Type") == "AWS::DynamoDB::Table"
    }
    problems = []
    if set(tables) != set(expected_tables):
        problems.append(f"template tables {sorted(tables)}, code tables {sorted(expected_tables)}")
    for name, expected in expected_tables.items():
        actual = json.loads(json.dumps(tables.get(name, {}).get("Properties", {})))
        problems += [
            f"{name}.{key}: template has {actual.get(key)!r}, code uses {value!r}"
            for key, value in expected.items()
            if actual.get(key) != value
        ]
    for problem in problems:
        print(problem)
    if not problems:
        print("template tables match the local definitions")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
