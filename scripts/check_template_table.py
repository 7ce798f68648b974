"""Checks that template.yaml's table matches the definition the code uses locally.

Usage: python check_template_table.py template.yaml '<json from local-table --print-definition>'
Runs in the SAM CLI's virtualenv (it uses cfn-lint's YAML loader for !Ref & co).
"""
import json
import sys

from cfnlint.decode import cfn_yaml


def main() -> int:
    template = cfn_yaml.load(sys.argv[1])
    expected = json.loads(sys.argv[2])
    tables = [
        r for r in template["Resources"].values() if r.get("Type") == "AWS::DynamoDB::Table"
    ]
    if len(tables) != 1:
        print(f"expected one AWS::DynamoDB::Table, found {len(tables)}")
        return 1
    actual = json.loads(json.dumps(tables[0]["Properties"]))
    problems = [
        f"{key}: template has {actual.get(key)!r}, code uses {value!r}"
        for key, value in expected.items()
        if actual.get(key) != value
    ]
    for problem in problems:
        print(problem)
    if not problems:
        print("template table matches the local definition")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
