//! Reports, observed from outside and read by real consumers: the fixture
//! suites write JSON, JUnit and GitHub output on hermetic hosts; a strict
//! XML parser (`roxmltree`) reads the JUnit, Debian's GitHub-flavoured
//! Markdown renderer (`cmark-gfm`) renders the step summary and `merge`'s
//! matrix, and `userns-test merge` puts the JSON reports together.
//!
//! The Markdown of `merge` is pinned by a golden file:
//! `USERNS_TEST_BLESS=1 cargo test -p userns-test --test reports` rewrites
//! `tests/golden/merge/matrix.md`; review the diff before committing it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Host, cli, hermetic, sibling_test_binary, sticky_scratch};
use userns_test::requires_userns;

const BINARY: &str = "userns-test::runner_suite";

/// Runs the runner fixture suite on `host` with `env`, under `userns-test
/// run` (which writes the reports); bubblewrap is pointed at a path with
/// nothing there, so `sandbox::runs_box` is skipped everywhere.
fn suite(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Output {
    let fixture = sibling_test_binary("runner_suite");
    let mut all = vec!["run", "--", fixture.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut cmd = host.command(cli(), &all);
    hermetic(&mut cmd)
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .envs(env.iter().copied())
        .output()
        .expect("run the fixture suite")
}

fn userns_test(args: &[&str], dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(cli());
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    hermetic(&mut cmd).output().expect("run userns-test")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn test_entry<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

/// Whether Debian's `cmark-gfm` is installed (`.ci/run` installs it).
fn cmark_gfm() -> bool {
    Command::new("cmark-gfm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `markdown` rendered to HTML by cmark-gfm with GitHub's extensions, and
/// `--unsafe`: raw HTML in the input comes out as HTML, so any the crate
/// let through from a name or a message would show as a tag.
fn render(markdown: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("cmark-gfm")
        .args([
            "--unsafe",
            "-e",
            "table",
            "-e",
            "strikethrough",
            "-e",
            "autolink",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cmark-gfm");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    text(&out.stdout)
}

/// Asserts that cmark-gfm produced no HTML tag but the `allowed` ones:
/// none came from a name or a message.
fn assert_only_tags(html: &str, allowed: &[&str]) {
    let found: std::collections::BTreeSet<String> = html
        .split('<')
        .skip(1)
        .filter_map(|t| {
            let name: String = t
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect();
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|t| !allowed.contains(&t.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected markup {unexpected:?} in\n{html}"
    );
}

/// What the step summary and `merge` write as markup of their own.
const SUMMARY_TAGS: [&str; 13] = [
    "h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "br", "ol", "li",
];

/// Four hosts, four real reports, one merge: the matrix shows what ran
/// where, the tests that ran nowhere, and each runner's abilities; every
/// root cause is in the report once.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn reports_from_several_hosts_merge_into_one_matrix() {
    // A sticky directory, as /tmp: the unprivileged host (uid 65534) writes
    // its report there too.
    let dir = sticky_scratch("reports-hosts");
    type Env = &'static [(&'static str, &'static str)];
    let hosts: [(&str, Host, Env); 4] = [
        ("root", Host::Plain, &[]),
        ("uid-65534", Host::Unprivileged, &[]),
        ("deny-net", Host::Plain, &[("USERNS_TEST_DENY", "net")]),
        ("docker-seccomp", Host::DockerSeccomp, &[]),
    ];
    let mut files = Vec::new();
    for (label, host, extra) in &hosts {
        let path = dir.join(format!("{label}.json"));
        let path_str = path.to_str().unwrap().to_owned();
        let mut env = vec![
            ("USERNS_TEST_REPORT_JSON", path_str.as_str()),
            ("USERNS_TEST_RUNNER", *label),
        ];
        env.extend_from_slice(extra);
        let out = suite(host, &[], &env);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", text(&out.stderr));
        files.push(path_str);
    }

    // One report, checked in detail: the seccomp host's.
    let seccomp = read_json(Path::new(&files[3]));
    assert_eq!(seccomp["schema"], "userns-test/report/2");
    assert_eq!(seccomp["runner"]["label"], "docker-seccomp");
    assert_eq!(seccomp["host"]["seccomp_mode"], 2);
    assert_eq!(
        seccomp["run"]["finished"], true,
        "finished by `userns-test run`"
    );
    assert_eq!(seccomp["run"]["kind"], "wrapped");
    let net = seccomp["abilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ability"] == "net")
        .unwrap();
    assert_eq!(net["verdict"], "unavailable", "{net:#}");
    assert_eq!(net["failure"]["name"], "EPERM");
    assert_eq!(net["cause"]["id"], "seccomp_refuses_namespaces");
    let root_cause = net["root_cause"].as_str().unwrap();
    let causes = seccomp["root_causes"].as_array().unwrap();
    let seccomp_cause = causes.iter().find(|c| c["id"] == root_cause).unwrap();
    assert!(
        seccomp_cause["remedy"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    // One root cause for every namespace ability the seccomp filter takes.
    let abilities: Vec<&str> = seccomp_cause["abilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(abilities, ["mount", "net", "user"], "{seccomp_cause:#}");
    assert_eq!(seccomp_cause["skipped"], 4, "{seccomp:#}");
    let needs_net = test_entry(&seccomp, "needs_net");
    assert_eq!(needs_net["binary"], BINARY);
    assert_eq!(needs_net["outcome"], "skipped");
    assert_eq!(needs_net["lacking"][0]["ability"], "net");
    assert_eq!(needs_net["lacking"][0]["root_cause"], root_cause);
    assert_eq!(test_entry(&seccomp, "plain")["outcome"], "passed");
    assert_eq!(test_entry(&seccomp, "panics")["outcome"], "ignored");
    assert_eq!(
        test_entry(&seccomp, "panics")["message"],
        "fixture: fails on purpose"
    );

    let mut args = vec!["merge", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let merged = userns_test(&args, None);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let m: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    let labels: Vec<&str> = m["runners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["root", "uid-65534", "deny-net", "docker-seccomp"]);
    let row = |name: &str| -> Vec<String> {
        m["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["outcome"].as_str().unwrap_or("absent").to_owned())
            .collect()
    };
    assert_eq!(row("plain"), ["passed"; 4]);
    // The seccomp host is still uid 0.
    assert_eq!(
        row("needs_sys_admin"),
        ["passed", "skipped", "passed", "passed"]
    );
    assert_eq!(row("needs_net"), ["passed", "passed", "skipped", "skipped"]);
    assert_eq!(row("sandbox::runs_box"), ["skipped"; 4]);
    assert_eq!(
        common::strings(&m["never_ran"]),
        common::RUNNER_SUITE_NEVER_RAN
    );
    assert_eq!(common::strings(&m["ignored"]), common::RUNNER_SUITE_IGNORED);
    assert_eq!(m["abilities"]["net"][2], "no: denied_by_environment");
    assert_eq!(m["abilities"]["net"][3], "no: seccomp_refuses_namespaces");

    // Markdown, and failing the job for the test that ran nowhere; the
    // two `#[ignore]`d ones are said apart and never fail it.
    let mut args = vec!["merge", "--fail-on-never-ran"];
    args.extend(files.iter().map(String::as_str));
    let md = userns_test(&args, None);
    assert_eq!(md.status.code(), Some(1));
    let stdout = text(&md.stdout);
    assert!(
        stdout.starts_with("## userns-test: 10 tests x 4 runners: 0 failed, "),
        "{stdout}"
    );
    assert!(stdout.contains("**Ran on no runner (1):**"), "{stdout}");
    assert!(
        text(&md.stderr).contains(
            "1 test skipped or not run on every runner (--fail-on-never-ran): \
             userns-test::runner_suite::sandbox::runs_box"
        ),
        "{}",
        text(&md.stderr)
    );
    assert!(
        text(&md.stderr).contains(
            "not counted, #[ignore]d: userns-test::runner_suite::panics, \
             userns-test::runner_suite::result_fails"
        ),
        "{}",
        text(&md.stderr)
    );
    // Only #[ignore]d tests ran nowhere: the job passes.
    let mut all_ran = read_json(Path::new(&files[0]));
    for t in all_ran["tests"].as_array_mut().unwrap() {
        if t["outcome"] == "skipped" {
            t["outcome"] = "passed".into();
            t["lacking"] = serde_json::json!([]);
        }
    }
    let all_ran_path = dir.join("all-ran.json");
    std::fs::write(&all_ran_path, serde_json::to_vec(&all_ran).unwrap()).unwrap();
    let root_only = userns_test(
        &[
            "merge",
            "--fail-on-never-ran",
            all_ran_path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        root_only.status.code(),
        Some(0),
        "{}",
        text(&root_only.stderr)
    );

    // Two reports of one runner are its shards: one column; kept apart on
    // request.
    let twice = userns_test(&["merge", "--format", "json", &files[0], &files[0]], None);
    let t: serde_json::Value = serde_json::from_slice(&twice.stdout).unwrap();
    assert_eq!(t["runners"].as_array().unwrap().len(), 1, "{t:#}");
    assert_eq!(t["runners"][0]["files"].as_array().unwrap().len(), 2);
    let apart = userns_test(
        &[
            "merge",
            "--format",
            "json",
            "--keep-shards",
            &files[0],
            &files[0],
        ],
        None,
    );
    let a: serde_json::Value = serde_json::from_slice(&apart.stdout).unwrap();
    assert_eq!(a["runners"][0]["label"], "root");
    assert_eq!(a["runners"][1]["label"], "root #2");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Markdown of `merge`, pinned (reports checked in, so the output does
/// not depend on this machine), and read by cmark-gfm: the hostile test
/// name renders as text, every row keeps its cells.
#[test]
fn merge_markdown_matches_the_golden_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/merge");
    let out = userns_test(&["merge", "privileged.json", "rootless.json"], Some(&dir));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let golden = dir.join("matrix.md");
    let actual = text(&out.stdout);
    if std::env::var_os("USERNS_TEST_BLESS").is_some() {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/merge/matrix.md (USERNS_TEST_BLESS=1 creates it)");
    assert_eq!(
        actual, expected,
        "merge output changed; if intended, USERNS_TEST_BLESS=1 and review the diff"
    );
    if !cmark_gfm() {
        userns_test::skip(
            module_path!(),
            "cmark-gfm is not installed (apt-get install cmark-gfm)",
        );
        return;
    }
    let html = render(&actual);
    assert_only_tags(&html, &[&SUMMARY_TAGS[..], &MERGE_TAGS[..]].concat());
    assert!(
        html.contains("pipes|&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    // What a reader sees first, in this order: the verdict, the failures
    // with their messages whole, the causes with their fixes, the matrix.
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {html}"))
    };
    let order = [
        "<h2>userns-test: 7 tests x 2 runners: 2 failed, 1 skipped (2 causes), 1 ignored</h2>",
        "<h3>Failed (2)</h3>",
        "<strong>net::loopback_roundtrip</strong>",
        "<pre><code class=\"language-text\">assertion failed: reply == b&quot;ping&quot;\n</code></pre>",
        "<strong>spawns_init</strong>",
        "<h3>Skipped, by cause</h3>",
        "<strong>C1</strong> CAP_SETPCAP is not effective",
        "<details><summary>1 test skipped; abilities: cap_setpcap</summary>",
        "<h3>Tests x runners</h3>",
        "<h3>Abilities</h3>",
        "<h3>Runners</h3>",
    ];
    for pair in order.windows(2) {
        assert!(
            at(pair[0]) < at(pair[1]),
            "{:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
    // Three cells in every row of the matrix: header, the binary, 7 tests,
    // the totals.
    let matrix = html.split("<h3>Tests x runners</h3>").nth(1).unwrap();
    let matrix = matrix.split("</table>").next().unwrap();
    let rows: Vec<&str> = matrix.split("<tr>").skip(1).collect();
    assert_eq!(rows.len(), 10, "{matrix}");
    for r in rows {
        assert_eq!(
            r.matches("<td").count() + r.matches("<th").count(),
            3,
            "{r}"
        );
    }
}

/// The tags `merge` adds to a summary's: lists, code blocks, emphasis,
/// and the folded lists of a cause's tests.
const MERGE_TAGS: [&str; 7] = ["ul", "code", "pre", "em", "details", "summary", "li"];

/// Each kind of bad input is its own error, naming the file, exit 2.
#[test]
fn merge_rejects_unusable_reports_by_name() {
    let dir = sticky_scratch("reports-malformed");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/merge/rootless.json");
    let whole = std::fs::read_to_string(&good).unwrap();
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let wrong = dir.join("doctor.json");
    std::fs::write(&wrong, r#"{"schema": "userns-test/doctor/1", "host": {}}"#).unwrap();
    let old = dir.join("old.json");
    std::fs::write(&old, r#"{"schema": "userns-test/report/1", "tests": []}"#).unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let not_json = dir.join("report.xml");
    std::fs::write(&not_json, "<testsuites/>").unwrap();
    let missing = dir.join("missing.json");
    let cases: [(&Path, &str); 7] = [
        (&truncated, "truncated.json:"),
        (
            &wrong,
            "schema \"userns-test/doctor/1\", expected \"userns-test/report/2\"",
        ),
        (&old, "written by an older userns-test"),
        (&empty, "empty file"),
        (&not_json, "report.xml:1:1: not a userns-test report"),
        (&dir, "is a directory"),
        (&missing, "missing.json: cannot read"),
    ];
    for (path, expected) in cases {
        let out = userns_test(
            &["merge", good.to_str().unwrap(), path.to_str().unwrap()],
            None,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(expected), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A truncated report names the line and column serde_json stopped at.
    let out = userns_test(&["merge", truncated.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    let position = stderr
        .split("truncated.json:")
        .nth(1)
        .and_then(|rest| rest.split(": ").next())
        .unwrap_or("");
    let numbers: Vec<&str> = position.split(':').collect();
    assert!(
        numbers.len() == 2 && numbers.iter().all(|n| n.parse::<usize>().is_ok()),
        "{stderr}"
    );
    for bad in [&["merge"][..], &["merge", "--format", "yaml", "x.json"]] {
        assert_eq!(userns_test(bad, None).status.code(), Some(2));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JUnit file read back by a parser that is not its writer: counts,
/// skipped messages (attribute and text), failures, properties, `time` and
/// `timestamp` on the root and every suite.
#[test]
fn junit_is_read_back_by_an_independent_parser() {
    let dir = sticky_scratch("reports-junit");
    let path = dir.join("junit.xml");
    // REQUIRE=net with net denied fails the two net tests; bwrap is
    // missing, so the sandbox test is skipped; two fixtures are #[ignore]d.
    let out = suite(
        &Host::Plain,
        &[],
        &[
            ("USERNS_TEST_JUNIT", path.to_str().unwrap()),
            ("USERNS_TEST_DENY", "net"),
            ("USERNS_TEST_REQUIRE", "net"),
            ("USERNS_TEST_RUNNER", "runner ✓ <1>"),
        ],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    for element in [root]
        .into_iter()
        .chain(root.children().filter(|n| n.has_tag_name("testsuite")))
    {
        let time: f64 = element.attribute("time").expect("time").parse().unwrap();
        assert!(time >= 0.0);
        let stamp = element.attribute("timestamp").expect("timestamp");
        assert!(stamp.starts_with("20") && stamp.contains('T'), "{stamp}");
    }
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    // The runner in the suite's name: a viewer merging several runners'
    // files by suite name keeps them apart.
    assert_eq!(
        suite.attribute("name"),
        Some(format!("{BINARY} on runner ✓ <1>").as_str())
    );
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 10, "{xml}");
    assert_eq!(suite.attribute("tests"), Some("10"));
    let case = |name: &str| {
        cases
            .iter()
            .find(|c| c.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no testcase {name} in\n{xml}"))
    };
    assert_eq!(case("plain").attribute("classname"), Some(BINARY));
    let failure = case("needs_net")
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    let first_line = failure.attribute("message").unwrap();
    assert!(
        first_line.contains("USERNS_TEST_REQUIRE requires what this host lacks: needs net"),
        "{first_line}"
    );
    // One line in the attribute; the whole text once, as the body.
    assert!(!first_line.contains('\n'), "{first_line:?}");
    let body = failure.text().unwrap_or_default();
    assert!(
        body.starts_with(first_line) && body.len() >= first_line.len(),
        "{body}"
    );
    let ignored = case("panics")
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .unwrap();
    assert_eq!(
        ignored.attribute("message"),
        Some("ignored: fixture: fails on purpose")
    );
    let skipped = case("sandbox::runs_box")
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .expect("an unmet test is <skipped>");
    // The attribute: the cause by its name in every output of the run,
    // and its fix; the text: what failed.
    let message = skipped.attribute("message").unwrap();
    let cause = message
        .split_once(": ")
        .map(|(id, _)| id)
        .filter(|id| id.starts_with('C'))
        .unwrap_or_else(|| panic!("no cause id in {message:?}"));
    assert!(
        message.contains(": bwrap at /nonexistent/bwrap is not installed")
            && message.contains("; fix: install bubblewrap"),
        "{message}"
    );
    let text_of_skip = skipped.text().unwrap_or_default();
    assert!(text_of_skip.starts_with("needs bwrap: "), "{text_of_skip}");
    // The cause and its fix once more, as a property of the first suite,
    // under the same name.
    let cause_property = suite
        .descendants()
        .find(|n| {
            n.has_tag_name("property") && n.attribute("name") == Some(&format!("cause.{cause}"))
        })
        .expect("the cause and its fix as a property");
    assert!(
        cause_property
            .attribute("value")
            .unwrap()
            .contains("fix: install bubblewrap")
    );
    assert_eq!(suite.attribute("skipped"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    // Verdicts are said once per file (in the last suite); the runner on
    // every suite.
    let property = |name: &str| {
        root.descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
            .unwrap_or_else(|| panic!("no property {name}"))
            .to_owned()
    };
    assert!(property("ability.net").starts_with("no: denied by USERNS_TEST_DENY"));
    assert!(property("ability.bwrap").starts_with("no: finding /nonexistent/bwrap failed"));
    assert_eq!(property("runner.label"), "runner ✓ <1>");
    assert!(
        !suite
            .descendants()
            .any(|n| n.attribute("name").is_some_and(|p| p.starts_with("host."))),
        "no host fact above the test cases"
    );
    // The host facts once, in a last suite of no test cases.
    let last = root
        .children()
        .rfind(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        last.attribute("name"),
        Some("userns-test host facts: runner ✓ <1>")
    );
    assert_eq!(last.attribute("tests"), Some("0"));
    assert!(
        last.descendants().any(|n| {
            n.attribute("name") == Some("host.kernel_release")
                && n.attribute("value").is_some_and(|v| !v.is_empty())
        }),
        "{xml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `C<n>` lines of a cause block (`  C1 the cause`): the name and the
/// cause.
fn cause_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  C"))
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, _)| n.parse::<usize>().is_ok())
        .map(|(n, cause)| (format!("C{n}"), cause.to_owned()))
        .collect()
}

/// One cause scheme in every output of a run: the names the test binary
/// gives its causes are the report's, the command's summary's, the step
/// summary's and the annotations'; and under `userns-test run` the cause
/// block is printed once, by the command.
#[test]
fn a_cause_has_one_name_in_every_output_of_a_run() {
    let dir = sticky_scratch("reports-cause-names");
    let json = dir.join("report.json");
    let summary = dir.join("summary.md");
    let env = [
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
        ("USERNS_TEST_DENY", "net"),
        ("USERNS_TEST_BWRAP", "/nonexistent/bwrap"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    // The binary alone prints its summary; `finish` writes the reports.
    let fixture = sibling_test_binary("runner_suite");
    let mut cmd = Command::new(&fixture);
    let binary = hermetic(&mut cmd).envs(env).output().unwrap();
    assert_eq!(binary.status.code(), Some(0), "{}", text(&binary.stderr));
    let printed = cause_lines(&text(&binary.stderr));
    assert_eq!(printed.len(), 2, "{}", text(&binary.stderr));
    let finish = common::userns_test(&["finish", "--exit-code", "0"], &env);
    assert_eq!(finish.status.code(), Some(0), "{}", text(&finish.stderr));
    let report = read_json(&json);
    let labels: Vec<(String, String)> = report["root_causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rc| {
            (
                rc["label"].as_str().unwrap().to_owned(),
                rc["cause"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(printed, labels, "the binary's names are the report's");
    let finished = text(&finish.stderr);
    assert_eq!(cause_lines(&finished), labels, "{finished}");
    let md = std::fs::read_to_string(&summary).unwrap();
    for (label, cause) in &labels {
        // As Markdown escapes it.
        let words = cause
            .chars()
            .take(20)
            .collect::<String>()
            .replace('_', "\\_");
        assert!(
            md.contains(&format!("- **{label}** {words}")),
            "{label}: {md}"
        );
        assert!(
            finished.contains(&format!("::notice title=userns-test {label}%3A ")),
            "{finished}"
        );
    }
    // Under the command: the block once, from the command, last.
    let wrapped = suite(&Host::Plain, &[], &env[1..3]);
    let stderr = text(&wrapped.stderr);
    assert_eq!(stderr.matches(" skipped, by cause:").count(), 1, "{stderr}");
    assert!(
        stderr
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("userns-test: 10 tests on "),
        "the counts end it: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `xunit-viewer` (npm), a JUnit viewer that merges the files it is given
/// by suite name: `XUNIT_VIEWER`, else on `PATH` (`.ci/run` installs it).
fn xunit_viewer() -> Option<PathBuf> {
    let path = std::env::var_os("XUNIT_VIEWER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("xunit-viewer"));
    Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| path)
}

/// Two runners' JUnit files, one where `needs_net` fails and one where it
/// passes, given together to a viewer that merges files by suite name: the
/// failing runner's test is shown failed, the other's passed, each under
/// its runner (with one suite name for both, the viewer showed the failure
/// as a pass).
#[test]
fn junit_of_several_runners_stays_apart_in_a_merging_viewer() {
    let Some(viewer) = xunit_viewer() else {
        userns_test::skip(
            module_path!(),
            "xunit-viewer is not installed (npm install -g xunit-viewer; .ci/run does)",
        );
        return;
    };
    let dir = sticky_scratch("reports-junit-viewer");
    for (runner, extra) in [
        (
            "failing",
            &[("USERNS_TEST_DENY", "net"), ("USERNS_TEST_REQUIRE", "net")][..],
        ),
        ("passing", &[][..]),
    ] {
        let path = dir.join(format!("{runner}.xml"));
        let mut env = vec![
            ("USERNS_TEST_JUNIT", path.to_str().unwrap()),
            ("USERNS_TEST_RUNNER", runner),
        ];
        env.extend_from_slice(extra);
        let out = suite(&Host::Plain, &[], &env);
        assert!(out.status.code().is_some(), "{}", text(&out.stderr));
    }
    // It writes an HTML page too (index.html where it runs, unless told).
    let out = Command::new(&viewer)
        .args(["--console", "--no-color", "--clear", "false", "--output"])
        .arg(dir.join("view.html"))
        .arg("--results")
        .arg(&dir)
        .output()
        .expect("run xunit-viewer");
    let shown = text(&out.stdout);
    // The viewer's console: a suite's name, then a line per test case led
    // by its mark.
    let mark = |runner: &str, test: &str| -> char {
        let suite = shown
            .split(&format!("\n {BINARY} on {runner}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no suite for {runner} in:\n{shown}"));
        let suite = suite.split(&format!("\n {BINARY} on ")).next().unwrap();
        suite
            .lines()
            .map(str::trim_start)
            .find(|l| l.split(' ').nth(1) == Some(test))
            .and_then(|l| l.chars().next())
            .unwrap_or_else(|| panic!("no {test} under {runner} in:\n{shown}"))
    };
    assert_eq!(mark("failing", "needs_net"), '✗', "{shown}");
    assert_eq!(mark("passing", "needs_net"), '✓', "{shown}");
    assert_eq!(mark("failing", "plain"), '✓', "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A destination that cannot be written: the results are still printed,
/// the error names the file, the run fails (`userns-test run`'s 2: the
/// tests passed, the report could not be written).
#[test]
fn unwritable_destination_fails_the_run_and_keeps_the_results() {
    let out = suite(
        &Host::Plain,
        &[],
        &[("USERNS_TEST_REPORT_JSON", "/proc/userns-test/report.json")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(text(&out.stdout).contains("test result: ok."));
    assert!(
        stderr.contains("could not write") && stderr.contains("/proc/userns-test"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// GitHub: a whole Markdown section appended to the step summary, every
/// root cause once in it, and one annotation per root cause: on a
/// Docker-like seccomp host four tests of three abilities are skipped for
/// one cause, and bubblewrap is missing, so two annotations, not four.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn github_summary_and_one_annotation_per_root_cause() {
    let dir = sticky_scratch("reports-github");
    let summary = dir.join("summary.md");
    std::fs::write(&summary, "earlier step output\n").unwrap();
    let out = suite(
        &Host::DockerSeccomp,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("USERNS_TEST_RUNNER", "gh"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("::notice "))
        .collect();
    assert_eq!(notices.len(), 2, "{stderr}");
    let seccomp = notices
        .iter()
        .find(|l| l.contains("%0Aneeds: mount, net, user%0A"))
        .unwrap();
    // A short title: the cause's name in every output of the run, the
    // count and the runner; the cause, fix, abilities and tests below.
    assert!(
        seccomp.starts_with("::notice title=userns-test C1%3A 4 skipped on gh::a seccomp filter"),
        "{seccomp}"
    );
    assert!(
        seccomp.contains("%0Askipped: async_body, mount::creates_ns, needs_net, net::creates_ns"),
        "{seccomp}"
    );
    assert!(
        text(&out.stdout)
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("test result:")
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    // The verdict in the heading; the causes with their fixes; then the
    // unavailable abilities, the available ones folded.
    assert!(
        md.starts_with(
            "earlier step output\n### userns-test: userns-test::runner\\_suite on gh: 3 passed, 0 \
             failed, 5 skipped, 2 ignored\n"
        ),
        "{md}"
    );
    // The seccomp cause once, with its tests and fix.
    assert_eq!(md.matches("a seccomp filter refuses").count(), 1, "{md}");
    assert!(
        md.contains(
            "(4 tests skipped: async\\_body, mount::creates\\_ns, needs\\_net, net::creates\\_ns)"
        ),
        "{md}"
    );
    assert!(
        md.contains("| net | **no**, C1 | unshare(CLONE\\_NEWUSER) failed: EPERM (1) |"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary>1 ability available: cap(sys_admin)</summary>"),
        "{md}"
    );
    if cmark_gfm() {
        let html = render(&md);
        assert_only_tags(
            &html,
            &[&SUMMARY_TAGS[..], &MERGE_TAGS[..], &["h4"]].concat(),
        );
        let skipped = html.find("<h4>Skipped, by cause</h4>").expect("causes");
        let table = html.find("<table>").expect("the unavailable abilities");
        let folded = html.find("<details>").expect("the available ones, folded");
        assert!(skipped < table && table < folded, "{html}");
    }

    // Under REQUIRE the same skips are warnings.
    let required = suite(
        &Host::Plain,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("USERNS_TEST_DENY", "net"),
            ("USERNS_TEST_REQUIRE", "user"),
        ],
    );
    assert!(
        text(&required.stderr).contains("::warning title="),
        "{}",
        text(&required.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fake bubblewrap whose error line holds what breaks consumers.
fn hostile_bwrap(dir: &Path) -> PathBuf {
    let path = dir.join("bwrap");
    std::fs::write(
        &path,
        "#!/bin/sh\nprintf 'bwrap: \\033[31m<img src=x onerror=alert(1)>|cell\\rreturn ::set-env name=X::1 %%0A\\n' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Hostile text from a test (a panic message with U+FFFE, an escape
/// sequence, HTML, a lone carriage return, a workflow command) and from a
/// program a probe runs (bubblewrap's error line) reaches every consumer
/// as text: the JUnit parses, cmark-gfm renders no markup from it, no
/// line of stderr but the crate's own annotations starts a workflow
/// command, and no escape sequence reaches the terminal.
#[test]
fn hostile_text_reaches_no_consumer_as_markup_or_command() {
    let dir = sticky_scratch("reports-hostile");
    let summary = dir.join("summary.md");
    let junit = dir.join("junit.xml");
    let json = dir.join("report.json");
    let bwrap = hostile_bwrap(&dir);
    let label = "ci <script>alert(1)</script> | *x*";
    let crash = sibling_test_binary("crash_suite");
    let out = common::userns_test(
        &["run", "--", crash.to_str().unwrap(), "--test-threads=1"],
        &[
            ("USERNS_TEST_FIXTURE_HOSTILE", "1"),
            ("USERNS_TEST_BWRAP", bwrap.to_str().unwrap()),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("USERNS_TEST_JUNIT", junit.to_str().unwrap()),
            ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
            ("USERNS_TEST_RUNNER", label),
        ],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !stream.contains('\u{1b}'),
            "an escape reached {name}:\n{stream}"
        );
        for line in stream.lines() {
            let trimmed = line.trim_start();
            let ours = trimmed.starts_with("::notice title=userns-test")
                || trimmed.starts_with("::warning title=userns-test")
                || (trimmed.starts_with("::error ") && trimmed.contains(",title=userns-test%3A "));
            assert!(ours || !trimmed.starts_with("::"), "{name}: {line:?}");
        }
    }
    assert_eq!(stderr.matches("::notice ").count(), 1, "{stderr}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML whatever the messages");
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("h_hostile_message"))
        .and_then(|c| c.children().find(|n| n.has_tag_name("failure")))
        .expect("the hostile test failed");
    let message = failure.attribute("message").unwrap();
    assert!(
        message.contains("\\u{fffe}") && message.contains("<img src=x"),
        "{message}"
    );

    let report = read_json(&json);
    let message = test_entry(&report, "h_hostile_message")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("test panicked at ") && message.ends_with(
            "\u{FFFE}\u{1b}[31m<img src=x onerror=alert(1)>|lone\rreturn\n::set-env name=X::1\n| a | b |"
        ),
        "the JSON keeps the message as it was: {message:?}"
    );

    if !cmark_gfm() {
        userns_test::skip(
            module_path!(),
            "cmark-gfm is not installed (apt-get install cmark-gfm)",
        );
        return;
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    let html = render(&md);
    assert_only_tags(
        &html,
        &[&SUMMARY_TAGS[..], &MERGE_TAGS[..], &["h4"]].concat(),
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;|cell"),
        "{html}"
    );
    // Every row of every table keeps its number of cells.
    for table in html.split("<table>").skip(1) {
        let table = table.split("</table>").next().unwrap();
        let rows: Vec<usize> = table
            .split("<tr>")
            .skip(1)
            .map(|r| r.matches("<td").count() + r.matches("<th").count())
            .collect();
        assert!(
            rows.windows(2).all(|w| w[0] == w[1]),
            "{rows:?} in\n{table}"
        );
    }
    // merge's Markdown of the same report.
    let merged = userns_test(&["merge", json.to_str().unwrap()], None);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let html = render(&text(&merged.stdout));
    assert_only_tags(&html, &[&SUMMARY_TAGS[..], &MERGE_TAGS[..]].concat());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `doctor --require`: 0 when available, 1 when missing, 2 on a bad name.
#[requires_userns(user, cap(sys_admin), cap(setuid), cap(setgid))]
fn doctor_require_exit_codes() {
    let ok = Host::Plain.run(cli(), &["doctor", "--require", "user"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let missing = Host::Unprivileged.run(cli(), &["doctor", "--require", "root", "--only", "root"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("required but missing: root"));
    let bad = userns_test(&["doctor", "--require", "nte"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("did you mean `net`?"));
}

/// `apparmor-profile`: a profile for exactly that path, with install
/// commands and a warning; a missing binary is exit 2.
#[test]
fn apparmor_profile_names_exactly_the_binary() {
    let exe = cli();
    let exe = exe.to_str().unwrap();
    let out = userns_test(&["apparmor-profile", exe], None);
    assert_eq!(out.status.code(), Some(0));
    let profile = text(&out.stdout);
    let canonical = std::fs::canonicalize(exe).unwrap();
    assert!(
        profile.contains(&format!(
            "profile userns-test-userns-test {} flags=(unconfined) {{\n  userns,\n",
            canonical.display()
        )),
        "{profile}"
    );
    assert!(profile.contains("abi <abi/4.0>,"));
    assert!(profile.contains("sudo apparmor_parser -r /etc/apparmor.d/userns-test-userns-test"));
    assert!(profile.contains("WARNING"));
    let missing = userns_test(&["apparmor-profile", "/nonexistent/binary"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/binary"));
    for sub in [
        "doctor",
        "merge",
        "apparmor-profile",
        "run",
        "nextest",
        "finish",
    ] {
        let help = userns_test(&[sub, "--help"], None);
        assert_eq!(help.status.code(), Some(0));
        assert!(text(&help.stdout).contains("EXIT CODES"), "{sub}");
    }
}
