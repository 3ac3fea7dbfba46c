#!/usr/bin/env python3
"""Holds a running disco's API to docs/openapi.yaml.

Usage: openapi_check.py SPEC BASE_URL NAME=VALUE...

For every GET path in the spec: requests it (path parameters from the
NAME=VALUE arguments), and checks that the status is one the spec documents,
that the content type is the documented one, and that the body validates
against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 uses).
Then asks each path that takes `limit` with limit=0 and wants the
documented 400, and a missing service and wants 404. For the event stream,
reads events until one with data arrives (the caller makes one happen) and
validates its data. Exits 1 naming every mismatch; prints what it checked.
Uses only jsonschema and PyYAML (Debian's python3-jsonschema, python3-yaml).
"""

import json
import sys
import urllib.error
import urllib.request

import jsonschema
import yaml


def main():
    spec_path, base, *pairs = sys.argv[1:]
    values = dict(p.split("=", 1) for p in pairs)
    spec = yaml.safe_load(open(spec_path))
    failures = []
    checked = []

    def validate(body, schema, what):
        resolver_schema = dict(schema)
        resolver_schema["components"] = spec["components"]
        try:
            jsonschema.validate(
                body,
                resolver_schema,
                cls=jsonschema.Draft202012Validator,
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )
        except jsonschema.ValidationError as e:
            failures.append(f"{what}: {e.message} at {list(e.absolute_path)}")

    def response_spec(operation, status):
        responses = operation["responses"]
        response = responses.get(str(status))
        if response and "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
        return response

    def get(url, accept_stream=False):
        request = urllib.request.Request(url)
        try:
            reply = urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()
        if accept_stream:
            return reply.status, reply.headers.get("Content-Type", ""), reply
        return reply.status, reply.headers.get("Content-Type", ""), reply.read()

    for path, item in spec["paths"].items():
        operation = item["get"]
        url_path = path
        for name, value in values.items():
            url_path = url_path.replace("{" + name + "}", value)
        streaming = any(
            "text/event-stream" in (r.get("content") or {})
            for r in operation["responses"].values()
            if isinstance(r, dict)
        )
        url = base + url_path + ("?since=0" if streaming else "")
        status, content_type, body = get(url, accept_stream=streaming)
        what = f"GET {url_path} -> {status}"
        checked.append(what)
        response = response_spec(operation, status)
        if response is None:
            failures.append(f"{what}: status not documented")
            continue
        (media, content), = response["content"].items()
        if not content_type.startswith(media):
            failures.append(f"{what}: content type {content_type!r}, documented {media!r}")
            continue
        if streaming:
            data = read_event(body)
            if data is None:
                failures.append(f"{what}: no event with data arrived")
            else:
                validate(json.loads(data), content["schema"], what + " event")
            body.close()
            continue
        validate(json.loads(body), content["schema"], what)

        # The documented errors.
        params = [p.get("$ref", "").split("/")[-1] or p.get("name") for p in operation.get("parameters", [])]
        if "limit" in params:
            status, _, body = get(base + url_path + "?limit=0")
            what = f"GET {url_path}?limit=0 -> {status}"
            checked.append(what)
            if status != 400:
                failures.append(f"{what}: wanted 400")
            else:
                validate(json.loads(body), response_spec(operation, 400)["content"]["application/json"]["schema"], what)
        if "404" in operation["responses"]:
            missing = path.replace("{name}", "no-such-service-here")
            status, _, body = get(base + missing)
            what = f"GET {missing} -> {status}"
            checked.append(what)
            if status != 404:
                failures.append(f"{what}: wanted 404")
            else:
                validate(json.loads(body), response_spec(operation, 404)["content"]["application/json"]["schema"], what)

    for line in checked:
        print("checked", line)
    for failure in failures:
        print("MISMATCH", failure)
    sys.exit(1 if failures else 0)


def read_event(stream):
    """The data of the first event that has data, or None."""
    data = []
    for raw in stream:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            data.append(line[len("data: "):])
        elif line == "" and data:
            return "\n".join(data)
    return None


if __name__ == "__main__":
    main()
