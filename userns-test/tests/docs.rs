//! The README and the guide (`docs/src`, an mdBook) link to each other and
//! to files of the repository: every relative link leads to a file that
//! exists, and every `#anchor` to a heading of that file, as GitHub and
//! mdBook name headings. (`mdbook build` in `.ci/run` builds the guide;
//! it does not check links.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// The pages: the README and every Markdown file of the guide.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let guide = root().join("docs/src");
    let mut guide_pages: Vec<PathBuf> = std::fs::read_dir(&guide)
        .expect("docs/src")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guide_pages.sort();
    out.extend(guide_pages);
    out
}

/// A heading's anchor as GitHub and mdBook make it: lowercase, letters,
/// digits, `_` and `-` kept, blanks as `-`, the rest dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// A page's lines outside fenced code blocks.
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of a page's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            out.insert(slug(&line[hashes + 1..]));
        }
    }
    out
}

/// The targets of a page's inline links and images, outside code blocks
/// and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        // Drop code spans: `[x](y)` inside one is text.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no file", page.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{}: {link}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every page of the guide is in its table of contents (a page left out
/// is built by no one and linked by chance).
#[test]
fn every_guide_page_is_in_the_summary() {
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for page in pages().into_iter().skip(1) {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        if name != "SUMMARY.md" {
            assert!(listed.contains(&name), "{name} is not in SUMMARY.md");
        }
    }
}

/// The README stays a page: what it is, the two commands, adding it, the
/// abilities, CI, links; the rest is in the guide.
#[test]
fn the_readme_is_a_page() {
    let lines = std::fs::read_to_string(root().join("README.md"))
        .unwrap()
        .lines()
        .count();
    assert!(
        (150..=320).contains(&lines),
        "README.md has {lines} lines: move detail to the guide (docs/src)"
    );
}

#[test]
fn anchors_are_named_as_github_names_them() {
    assert_eq!(
        slug("Running a test inside namespaces: `#[in_userns]`"),
        "running-a-test-inside-namespaces-in_userns"
    );
    assert_eq!(
        slug("A second real kernel: Debian 6.1 with AppArmor and the BPF LSM"),
        "a-second-real-kernel-debian-61-with-apparmor-and-the-bpf-lsm"
    );
    assert_eq!(
        links("see [a](x.md#b) and `[c](d)` and ![i](images/p.png)"),
        ["x.md#b", "images/p.png"]
    );
}
