"""The broken configuration files of the fault suite, and how to write them again.

``tests/faults/configs/*.toml`` are refused by every command that loads a config (``check-config``,
``list``, ...); ``tests/faults/configs/host/*.toml`` are fine as files but name something this host
lacks (an unset secret variable, a missing CA file, an unknown group), so ``check-config`` and
``open`` refuse them. The first line of each file is ``# key: KEY``, the key its one-line error
must name. The files are committed; after changing a case here, write them again with
``python -m tests.faults.config_fixtures`` and read the diff.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).parent / "configs"
HTTP_TRAFFIC = '''[traffic]
kind = "http"
base_url = "https://deploy.example.com"
[traffic.actions.set_weight]
method = "PUT"
url = "{base_url}/weight"
body = { weight = "{percent}" }
[traffic.actions.current_weight]
url = "{base_url}/weight"
result_path = "weight"
'''
HTTP_DEPLOY = '''[deploy]
kind = "http"
base_url = "https://deploy.example.com"
[deploy.actions.current_version]
url = "{base_url}/version"
result_path = "version"
[deploy.actions.rollback]
method = "POST"
url = "{base_url}/rollbacks"
body = { to = "{target}" }
'''
PROM = '''[metrics]
kind = "prometheus"
url = "http://127.0.0.1:9090"
'''
REAL = PROM + HTTP_TRAFFIC + HTTP_DEPLOY
GUARD = '''[[guardrails]]
name = "error-ratio"
query = 'errors{service="$service",track="$track"}'
max = 0.02
'''

CASES: dict[str, tuple[str, str | bytes]] = {
    # TOML that does not parse
    "toml_unclosed_table": ("roster", "[roster\nsecurity-lead = []\n"),
    "toml_bare_word_value": ("monitoring.poll_interval_s",
                             "[monitoring]\npoll_interval_s = five\n"),
    "toml_duplicate_key": ("monitoring.poll_interval_s",
                           "[monitoring]\npoll_interval_s = 5\npoll_interval_s = 6\n"),
    "toml_duplicate_table": ("store", "[store]\npath = 'a.db'\n[store]\ngroup = 'x'\n"),
    "toml_unterminated_string": ("store.path", "[store]\npath = \"/srv/w.db\n"),
    "toml_deep_array": ("x", "x = " + "[" * 3000 + "]" * 3000 + "\n"),
    "toml_deep_inline_table": ("x", "x = " + "{a = " * 1500 + "1" + "}" * 1500 + "\n"),
    "toml_deep_tables": ("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q",
                         "[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t]\nx = 1\n"),
    "toml_deep_body": ("deploy.actions.rollback.body" + ".a" * 13,
                       PROM + HTTP_TRAFFIC + HTTP_DEPLOY.replace(
                           'body = { to = "{target}" }',
                           "body = " + "{a = " * 40 + "1" + "}" * 40)),
    "not_utf8": ("line 3", b"[roster]\nsecurity-lead = [\"\xff\"]\n"),
    # keys that do not exist
    "unknown_table": ("stor", "[stor]\npath = 'w.db'\n"),
    "unknown_key": ("store.password", "[store]\npassword = 'hunter2'\n"),
    "unknown_key_in_guardrail": ("guardrails[0].threshold", GUARD + "threshold = 3\n"),
    "array_of_tables_for_a_table": ("store", "[[store]]\npath = 'a.db'\n"),
    "scalar_for_a_table": ("roster", "roster = 5\n"),
    # the roster and approvals
    "roster_not_a_list": ("roster.security-lead", "[roster]\nsecurity-lead = \"priya\"\n"),
    "roster_bad_user": ("roster.security-lead[0]", "[roster]\nsecurity-lead = [\"pri ya\"]\n"),
    "roster_bad_role_name": ("roster.Security_Lead", "[roster]\nSecurity_Lead = [\"priya\"]\n"),
    "roster_role_nobody_requires": ("roster.securty-lead",
                                    "[roster]\nsecurty-lead = [\"priya\"]\n"),
    "approvals_unknown_category": ("approvals.hotfix",
                                   "[approvals]\nhotfix = [\"platform-lead\"]\n"),
    "approvals_bad_role": ("approvals.security[1]",
                           "[approvals]\nsecurity = [\"security-lead\", \"Platform Lead\"]\n"),
    "approvals_not_a_list": ("approvals.security", "[approvals]\nsecurity = \"security-lead\"\n"),
    # priorities
    "priority_negative": ("priorities.P0", "[priorities]\nP0 = -1.0\n"),
    "priority_nan": ("priorities.P1", "[priorities]\nP1 = nan\n"),
    "priority_inf": ("priorities.P2", "[priorities]\nP2 = inf\n"),
    "priority_text": ("priorities.P3", "[priorities]\nP3 = \"soon\"\n"),
    "priority_unknown": ("priorities.P4", "[priorities]\nP4 = 72.0\n"),
    # bypasses
    "bypass_unknown_element": ("bypass.coffee",
                               "[bypass.coffee]\njustification = 'x'\ncompensation = 'y'\n"
                               "post_gate = 'z'\n"),
    "bypass_missing_compensation": ("bypass.canary.compensation",
                                    "[bypass.canary]\njustification = 'x'\npost_gate = 'z'\n"),
    # canary plans
    "plan_default_missing": ("canary.default_plan", "[canary]\ndefault_plan = \"slow\"\n"),
    "plan_not_rising": ("canary.plans.compressed.stages[1].percent",
                        "[[canary.plans.compressed.stages]]\npercent = 50\n"
                        "[[canary.plans.compressed.stages]]\npercent = 10\n"),
    "plan_not_ending_at_100": ("canary.plans.compressed.stages[1].percent",
                               "[[canary.plans.compressed.stages]]\npercent = 10\n"
                               "[[canary.plans.compressed.stages]]\npercent = 50\n"),
    "plan_no_stages": ("canary.plans.compressed.stages",
                       "[canary.plans.compressed]\nstages = []\n"),
    "stage_percent_zero": ("canary.plans.compressed.stages[0].percent",
                           "[[canary.plans.compressed.stages]]\npercent = 0\n"),
    "stage_hold_negative": ("canary.plans.compressed.stages[0].hold_s",
                            "[[canary.plans.compressed.stages]]\npercent = 100\nhold_s = -5\n"),
    "stage_hold_infinite": ("canary.plans.compressed.stages[0].hold_s",
                            "[[canary.plans.compressed.stages]]\npercent = 100\nhold_s = inf\n"),
    # guardrails
    "guardrail_no_limit": ("guardrails[0].max",
                           "[[guardrails]]\nname = 'e'\nquery = 'x{track=\"$track\"}'\n"),
    "guardrail_no_track": ("guardrails[0].query",
                           "[[guardrails]]\nname = 'e'\nquery = 'x{service=\"$service\"}'\n"
                           "max = 1\n"),
    "guardrail_unknown_placeholder": ("guardrails[0].query", GUARD.replace("$service", "$servce")),
    "guardrail_unknown_placeholder_braces": ("guardrails[0].query",
                                             GUARD.replace("$service", "${incident}")),
    "guardrail_evidence_placeholder": ("guardrails[0].evidence_query",
                                       GUARD + "evidence_query = 'reqs{track=\"$track\","
                                               "pod=\"$pod\"}'\n"),
    "guardrail_bad_name": ("guardrails[0].name", GUARD.replace("error-ratio", "error/ratio")),
    "guardrail_duplicate_name": ("guardrails[1].name", GUARD + GUARD),
    "guardrail_unknown_action": ("guardrails[0].on_breach", GUARD + "on_breach = \"panic\"\n"),
    "guardrail_consecutive_zero": ("guardrails[0].consecutive", GUARD + "consecutive = 0\n"),
    "guardrail_max_nan": ("guardrails[0].max", GUARD.replace("max = 0.02", "max = nan")),
    "guardrail_ratio_negative": ("guardrails[0].max_ratio_to_baseline",
                                 GUARD + "max_ratio_to_baseline = -2.0\n"),
    "guardrail_missing_query": ("guardrails[0].query", "[[guardrails]]\nname = 'e'\nmax = 1\n"),
    "guardrails_not_an_array": ("guardrails", "guardrails = \"error-ratio\"\n"),
    # monitoring, rollback, the rest
    "poll_interval_zero": ("monitoring.poll_interval_s", "[monitoring]\npoll_interval_s = 0\n"),
    "clock_skew_negative": ("monitoring.clock_skew_s", "[monitoring]\nclock_skew_s = -1\n"),
    "verify_timeout_zero": ("rollback.verify_timeout_s", "[rollback]\nverify_timeout_s = 0\n"),
    "checklist_not_a_list": ("rollback.compatibility_checklist",
                             "[rollback]\ncompatibility_checklist = \"all good\"\n"),
    "emergency_rate_negative": ("emergency_rate.max_per_30_days",
                                "[emergency_rate]\nmax_per_30_days = -1\n"),
    "scenarios_not_a_list": ("scenarios.mission_critical",
                             "[scenarios]\nmission_critical = \"checkout\"\n"),
    "store_path_a_number": ("store.path", "[store]\npath = 5\n"),
    "notify_bad_variable_name": ("notify.webhook_url_env",
                                 "[notify]\nwebhook_url_env = \"the webhook\"\n"),
    "notify_deadline_zero": ("notify.deadline_s", "[notify]\ndeadline_s = 0\n"),
    # metrics
    "metrics_unknown_kind": ("metrics.kind", "[metrics]\nkind = \"graphite\"\n"),
    "metrics_no_kind": ("metrics.kind", "[metrics]\nurl = \"http://127.0.0.1:9090\"\n"),
    "metrics_no_url": ("metrics.url", "[metrics]\nkind = \"prometheus\"\n"),
    "metrics_url_without_scheme": ("metrics.url",
                                   "[metrics]\nkind = \"prometheus\"\nurl = \"prom:9090\"\n"),
    "metrics_bad_port": ("metrics.url", "[metrics]\nkind = \"prometheus\"\n"
                                        "url = \"http://127.0.0.1:99999\"\n"),
    "metrics_secret_inline": ("metrics.bearer_token", PROM + "bearer_token = \"eyJhbGciOi\"\n"),
    "metrics_secret_bad_variable": ("metrics.bearer_token.env",
                                    PROM + "bearer_token = { env = \"1TOKEN\" }\n"),
    "metrics_basic_user_alone": ("metrics.basic_password",
                                 PROM + "basic_user = { env = \"PROM_USER\" }\n"),
    "metrics_deadline_infinite": ("metrics.deadline_s", PROM + "deadline_s = inf\n"),
    "metrics_timeout_too_long": ("metrics.timeout_s", PROM + "timeout_s = 1000\n"),
    # traffic and deploy
    "traffic_unknown_kind": ("traffic.kind", PROM + "[traffic]\nkind = \"istio\"\n" + HTTP_DEPLOY),
    "traffic_http_no_base_url": ("traffic.base_url",
                                 REAL.replace('base_url = "https://deploy.example.com"\n', "", 1)),
    "traffic_http_base_url_without_scheme": ("traffic.base_url", REAL.replace(
        'base_url = "https://deploy.example.com"', 'base_url = "deploy.example.com"', 1)),
    "traffic_http_missing_action": ("traffic.actions.current_weight", REAL.replace(
        '[traffic.actions.current_weight]\nurl = "{base_url}/weight"\nresult_path = "weight"\n',
        "")),
    "traffic_http_unknown_action": ("traffic.actions.promote",
                                    REAL + "[traffic.actions.promote]\nurl = \"{base_url}/p\"\n"),
    "traffic_http_unknown_placeholder": ("traffic.actions.set_weight.url", REAL.replace(
        'url = "{base_url}/weight"', 'url = "{base_url}/{weight}"', 1)),
    "traffic_http_bad_method": ("traffic.actions.set_weight.method",
                                REAL.replace('method = "PUT"', 'method = "FETCH"')),
    "traffic_http_header_with_newline": ("traffic.headers.X-Team", REAL.replace(
        "[traffic.actions.set_weight]", "[traffic.headers]\nX-Team = \"a\\r\\nInjected: 1\"\n"
                                        "[traffic.actions.set_weight]")),
    "traffic_http_bad_header_name": ("traffic.headers.\"Bad Header\"", REAL.replace(
        "[traffic.actions.set_weight]", "[traffic.headers]\n\"Bad Header\" = \"x\"\n"
                                        "[traffic.actions.set_weight]")),
    "deploy_http_deadline_negative": ("deploy.deadline_s", REAL.replace(
        '[deploy]\nkind = "http"\n', '[deploy]\nkind = "http"\ndeadline_s = -1\n')),
    "deploy_http_action_deadline_zero": ("deploy.actions.rollback.deadline_s", REAL.replace(
        'body = { to = "{target}" }', 'body = { to = "{target}" }\ndeadline_s = 0')),
    "deploy_missing_rollback": ("deploy.actions.rollback", REAL.replace(
        '[deploy.actions.rollback]\nmethod = "POST"\nurl = "{base_url}/rollbacks"\n'
        'body = { to = "{target}" }\n', "")),
    "deploy_command_bad_value_pattern": ("deploy.value_pattern", PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
value_pattern = "^([a-z]+$"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
[deploy.actions.rollback]
argv = ["kubectl", "rollout", "undo", "deployment/{service}"]
'''),
    "deploy_command_bad_result_regex": ("deploy.actions.current_version.result_regex",
                                        PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
result_regex = '(?P<value[a-z]+'
[deploy.actions.rollback]
argv = ["kubectl", "rollout", "undo", "deployment/{service}"]
'''),
    "deploy_command_argv_a_string": ("deploy.actions.rollback.argv",
                                     PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
[deploy.actions.rollback]
argv = "kubectl rollout undo deployment/{service}"
'''),
    "deploy_command_argv_empty": ("deploy.actions.rollback.argv", PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
[deploy.actions.rollback]
argv = []
'''),
    "deploy_command_two_parsers": ("deploy.actions.current_version.result_json_path",
                                   PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
result_regex = '(?P<value>v[0-9.]+)'
result_json_path = "status.version"
[deploy.actions.rollback]
argv = ["kubectl", "rollout", "undo", "deployment/{service}"]
'''),
    "deploy_command_bad_env_name": ("deploy.env.1KUBE", PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.env]
1KUBE = "x"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
[deploy.actions.rollback]
argv = ["kubectl", "rollout", "undo", "deployment/{service}"]
'''),
    "deploy_command_unknown_placeholder": ("deploy.actions.rollback.argv",
                                           PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
[deploy.actions.rollback]
argv = ["kubectl", "rollout", "undo", "deployment/{service}", "--to-revision={revision}"]
'''),
    # a real section with another left out: it would silently be the simulator
    "implicit_simulated_metrics": ("metrics", HTTP_TRAFFIC + HTTP_DEPLOY),
    "implicit_simulated_traffic": ("traffic", PROM + HTTP_DEPLOY),
    "implicit_simulated_deploy": ("deploy", PROM + HTTP_TRAFFIC),
    "implicit_simulated_traffic_and_deploy": ("traffic", PROM),
}

HOST: dict[str, tuple[str, str | bytes]] = {
    "unset_http_header_secret": ("traffic.headers.Authorization", REAL.replace(
        "[traffic.actions.set_weight]",
        "[traffic.headers]\nAuthorization = { env = \"WARROOM_FAULTS_UNSET_TOKEN\", "
        "format = \"Bearer {}\" }\n[traffic.actions.set_weight]")),
    "unset_prometheus_token": ("metrics.bearer_token", PROM.replace(
        'url = "http://127.0.0.1:9090"\n', 'url = "http://127.0.0.1:9090"\n'
        'bearer_token = { env = "WARROOM_FAULTS_UNSET_TOKEN" }\n') + HTTP_TRAFFIC + HTTP_DEPLOY),
    "missing_ca_file": ("metrics.ca_file", PROM.replace(
        'url = "http://127.0.0.1:9090"\n',
        'url = "https://127.0.0.1:9090"\nca_file = "/nonexistent/warroom-ca.pem"\n')
        + HTTP_TRAFFIC + HTTP_DEPLOY),
    "unset_command_env_secret": ("deploy.env.KUBE_TOKEN", PROM + HTTP_TRAFFIC + '''[deploy]
kind = "command"
[deploy.env]
KUBE_TOKEN = { env = "WARROOM_FAULTS_UNSET_TOKEN" }
[deploy.actions.current_version]
argv = ["kubectl", "get", "deployment", "{service}"]
[deploy.actions.rollback]
argv = ["kubectl", "rollout", "undo", "deployment/{service}"]
'''),
    "unset_webhook_variable": ("notify.webhook_url_env",
                               "[notify]\nwebhook_url_env = \"WARROOM_FAULTS_UNSET_WEBHOOK\"\n"),
    "unknown_store_group": ("store.group", "[store]\ngroup = \"warroom-no-such-group\"\n"),
}



def write() -> None:
    for folder, cases in ((OUT, CASES), (OUT / "host", HOST)):
        folder.mkdir(parents=True, exist_ok=True)
        for name, (key, body) in cases.items():
            head = f"# key: {key}\n".encode()
            data = body if isinstance(body, bytes) else body.encode()
            (folder / f"{name}.toml").write_bytes(head + data)


if __name__ == "__main__":
    write()
    print(f"{len(CASES)} broken configs, {len(HOST)} host problems written to {OUT}")
