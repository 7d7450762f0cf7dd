//! The search page in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol by the `headless_chrome` crate, against a real `searcher demo`.
//!
//! Types a query and sees hits; types a prefix and picks a title suggestion with the
//! keyboard (down, Enter; Escape closes the list); kills a node and sees the cluster panel
//! mark it down while a new search still shows full results; kills the front-end that
//! served the page and still searches (the page moves to a coordinating node); checks that queries, titles
//! and suggestions made of HTML render as text and never run. Chromium comes from `apt-get install chromium` (done by `.ci/run`);
//! without it the test fails when `CI=true` and is skipped, with a notice, otherwise.
//! Set `DEMO_SCREENSHOT=/path/page.png` to keep a screenshot of the page with results.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use tests::Signal;
use tests::{send_signal, temp_dir, wait_for, Demo};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The bound for the panel to show a killed node as down.
const MARKED_DOWN_WITHIN: Duration = Duration::from_secs(10);
/// Waiting on the page (results, panel refreshes); generous for 2 noisy cores.
const PAGE_DEADLINE: Duration = Duration::from_secs(60);

/// Chromium's path, or `None` (after a notice) when it is missing outside CI.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{} is not installed: the browser test needs Debian's chromium (`apt-get install -y chromium`)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED browser test: {message}");
    None
}

fn launch(chromium: &Path, profile: &Path) -> Browser {
    let args = [
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
    ]
    .map(std::ffi::OsStr::new);
    let options = LaunchOptions::default_builder()
        .path(Some(chromium.to_path_buf()))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .user_data_dir(Some(profile.to_path_buf()))
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(600))
        .args(args.to_vec())
        .build()
        .expect("launch options");
    Browser::new(options).unwrap_or_else(|e| panic!("cannot start {}: {e:#}", chromium.display()))
}

/// Evaluates a JavaScript expression in the page and returns its JSON value.
fn eval(tab: &Tab, expression: &str) -> serde_json::Value {
    tab.evaluate(expression, false)
        .unwrap_or_else(|e| panic!("evaluate {expression}: {e:#}"))
        .value
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until `expression` is truthy.
fn wait_js(tab: &Tab, what: &str, deadline: Duration, expression: &str) {
    wait_for(what, deadline, || {
        let value = eval(tab, expression);
        (value.as_bool() == Some(true)).then_some(())
    });
}

/// Clears the search box, types `query` like a user, and presses Enter.
fn type_query(tab: &Arc<Tab>, query: &str) {
    eval(tab, "document.getElementById('q').value = ''");
    tab.wait_for_element("#q")
        .expect("search box")
        .click()
        .expect("click the box");
    tab.type_str(query).expect("type the query");
    tab.press_key("Enter").expect("press Enter");
}

/// Clears the search box and types `prefix` like a user, without pressing Enter.
fn type_prefix(tab: &Arc<Tab>, prefix: &str) {
    eval(tab, "document.getElementById('q').value = ''");
    tab.wait_for_element("#q")
        .expect("search box")
        .click()
        .expect("click the box");
    tab.type_str(prefix).expect("type the prefix");
}

/// Waits until the suggestion list is open and lists an entry whose text is `text`.
fn wait_suggested(tab: &Tab, text: &str) {
    let text_js = serde_json::to_string(text).unwrap();
    wait_js(
        tab,
        &format!("a suggestion {text}"),
        PAGE_DEADLINE,
        &format!(
            "!document.getElementById('suggestions').hidden && \
             [...document.querySelectorAll('#suggestions li')].some(li => li.textContent === {text_js})"
        ),
    );
}

/// Suggestions as you type: ArrowDown selects the first, Enter searches its title,
/// Escape closes the list and keeps what was typed.
fn suggestions_follow_the_keyboard(tab: &Arc<Tab>) {
    type_prefix(tab, "anarc");
    wait_suggested(tab, "Anarchism");
    tab.press_key("ArrowDown").expect("press ArrowDown");
    let first = "document.querySelector('#suggestions li')";
    assert_eq!(
        eval(tab, &format!("{first}.getAttribute('aria-selected')")),
        "true"
    );
    assert_eq!(
        eval(
            tab,
            "document.getElementById('q').getAttribute('aria-activedescendant')"
        ),
        "suggestion-0"
    );
    let title = eval(tab, &format!("{first}.dataset.title"));
    let title = title.as_str().expect("a suggested title").to_string();
    tab.press_key("Enter").expect("press Enter");
    wait_full_results(tab, &title);
    assert_eq!(
        eval(tab, "document.getElementById('suggestions').hidden"),
        true
    );
    assert_eq!(
        eval(tab, "document.getElementById('q').value"),
        title.as_str()
    );
    type_prefix(tab, "anarc");
    wait_suggested(tab, "Anarchism");
    tab.press_key("Escape").expect("press Escape");
    assert_eq!(
        eval(tab, "document.getElementById('suggestions').hidden"),
        true
    );
    assert_eq!(eval(tab, "document.getElementById('q').value"), "anarc");
}

/// Waits for a finished search for `query` with at least one hit and no partial banner.
fn wait_full_results(tab: &Tab, query: &str) {
    let query_js = serde_json::to_string(query).unwrap();
    wait_js(
        tab,
        &format!("results for {query}"),
        PAGE_DEADLINE,
        &format!(
            "document.querySelectorAll('#results .hit').length > 0 && \
             document.getElementById('summary').textContent.includes({query_js})"
        ),
    );
    assert_eq!(
        eval(tab, "document.getElementById('banner').hidden"),
        true,
        "a banner is shown"
    );
}

#[test]
fn page_searches_shows_failover_live_and_renders_html_queries_as_text() {
    let Some(chromium) = chromium() else { return };
    let dir = temp_dir("browser");
    let demo = Demo::start(&dir.path().join("data"), &[]);
    let browser = launch(&chromium, &dir.path().join("profile"));
    let tab = browser.new_tab().expect("open a tab");
    tab.set_default_timeout(PAGE_DEADLINE);
    tab.navigate_to(&format!("{}/", demo.url))
        .and_then(|t| t.wait_until_navigated())
        .expect("load the page");
    wait_js(
        &tab,
        "the panel to list 3 nodes up",
        PAGE_DEADLINE,
        "document.querySelectorAll('#nodes .node[data-state=\"up\"]').length === 3",
    );

    // A search typed like a user: hits with linked titles, highlighted snippets, the query
    // kept in the URL.
    type_query(&tab, "anarchism");
    wait_full_results(&tab, "anarchism");
    let first_title = eval(
        &tab,
        "document.querySelector('#results .hit .title').textContent",
    );
    assert!(
        first_title
            .as_str()
            .is_some_and(|t| t.contains("Anarchism")),
        "{first_title}"
    );
    let href = eval(&tab, "document.querySelector('#results .hit a.title').href");
    assert!(
        href.as_str().is_some_and(|h| h.starts_with("http")),
        "{href}"
    );
    assert!(
        eval(
            &tab,
            "document.querySelectorAll('#results .snippet b').length"
        )
        .as_u64()
            > Some(0)
    );
    assert_eq!(eval(&tab, "location.search"), "?q=anarchism");
    wait_js(
        &tab,
        "the panel to mark replicas that served",
        PAGE_DEADLINE,
        "document.querySelectorAll('#shards .replica.served').length > 0",
    );
    suggestions_follow_the_keyboard(&tab);
    if let Some(path) = std::env::var_os("DEMO_SCREENSHOT") {
        let png = tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("screenshot");
        std::fs::write(&path, png).expect("write the screenshot");
    }

    // Kill a node: the panel shows it down within 10 s, and searches stay complete.
    let victim = "node-2";
    assert!(send_signal(demo.pid(victim), Signal::SIGKILL));
    let killed_at = Instant::now();
    type_query(&tab, "albedo");
    wait_full_results(&tab, "albedo");
    let down = format!(
        "document.querySelector('#nodes .node[data-node=\"{victim}\"]').dataset.state === 'down'"
    );
    wait_for(
        &format!("the panel to mark {victim} down"),
        MARKED_DOWN_WITHIN,
        || (eval(&tab, &down).as_bool() == Some(true)).then_some(()),
    );
    eprintln!(
        "{victim} shown down {:.1} s after SIGKILL",
        killed_at.elapsed().as_secs_f64()
    );
    type_query(&tab, "autism");
    wait_full_results(&tab, "autism");
    assert!(
        eval(&tab, &format!("[...document.querySelectorAll('#results .hit')].every(h => h.dataset.node !== '{victim}')"))
            .as_bool()
            == Some(true),
        "a hit claims to come from the dead node"
    );

    // Kill the front-end that served the page: the page carries on with the coordinating
    // nodes /cluster listed (its searches and its panel).
    assert!(send_signal(demo.pid("frontend"), Signal::SIGKILL));
    type_query(&tab, "anarchism");
    wait_full_results(&tab, "anarchism");
    wait_js(
        &tab,
        "the panel to refresh from a node",
        PAGE_DEADLINE,
        "document.getElementById('cluster-age').textContent.includes('via 127.0.0.1:')",
    );

    // HTML in a query is text: typed, and straight from the URL.
    eval(
        &tab,
        "window.__xss = 0; window.alert = () => { window.__xss += 1; }",
    );
    let script = "<script>alert(1)</script>";
    type_query(&tab, script);
    let script_js = serde_json::to_string(script).unwrap();
    wait_js(
        &tab,
        "the script query shown as text",
        PAGE_DEADLINE,
        &format!("document.getElementById('summary').textContent.includes({script_js})"),
    );
    assert_eq!(
        eval(&tab, "document.querySelectorAll('body script').length"),
        1,
        "a script element was injected"
    );
    assert_eq!(eval(&tab, "document.getElementById('q').value"), script);
    let img = "<img src=x onerror=\"window.__xss += 1\">";
    let img_js = serde_json::to_string(img).unwrap();
    eval(
        &tab,
        &format!(
            "history.pushState(null, '', '?q=' + encodeURIComponent({img_js})); \
                         dispatchEvent(new PopStateEvent('popstate'))"
        ),
    );
    wait_js(
        &tab,
        "the img query shown as text",
        PAGE_DEADLINE,
        &format!("document.getElementById('summary').textContent.includes({img_js})"),
    );
    assert_eq!(
        eval(&tab, "document.querySelectorAll('main img').length"),
        0
    );
    std::thread::sleep(Duration::from_millis(300)); // an onerror would have fired by now
    assert_eq!(eval(&tab, "window.__xss"), 0, "markup from a query ran");
}

/// Titles such as `<img src=x onerror=...>` are stored as text by the indexer.
const HOSTILE_TITLES: [&str; 2] = [
    "<img src=x onerror=\"window.__xss += 1\">",
    "<script>window.__xss += 1</script>",
];

/// A small dump whose page titles and text are HTML meant to run in the page.
fn hostile_dump(dir: &Path) -> PathBuf {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut xml = String::from(
        "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\">\
         <siteinfo><sitename>Hostile</sitename></siteinfo>\n",
    );
    for (i, title) in HOSTILE_TITLES.iter().enumerate() {
        let text = format!(
            "Zebras graze on the savanna. {title} Zebras are striped. <b onmouseover=\"window.__xss += 1\">zebras</b>"
        );
        xml.push_str(&format!(
            "<page><title>{}</title><ns>0</ns><id>{}</id><revision><id>{}</id><text>{}</text></revision></page>\n",
            escape(title),
            i + 1,
            i + 10,
            escape(&text)
        ));
    }
    xml.push_str("</mediawiki>\n");
    let path = dir.join("hostile.xml");
    std::fs::write(&path, xml).expect("write the hostile dump");
    path
}

#[test]
fn titles_and_text_from_the_index_render_as_text() {
    let Some(chromium) = chromium() else { return };
    let dir = temp_dir("browser-hostile");
    let dump = hostile_dump(dir.path());
    let dump_arg = dump.to_str().expect("utf-8 temp path");
    let one_of_each = [
        "--indexers",
        "1",
        "--shards",
        "1",
        "--nodes",
        "1",
        "--replicas",
        "1",
    ];
    let demo = Demo::start(
        &dir.path().join("data"),
        &[&["--dump", dump_arg][..], &one_of_each].concat(),
    );
    let browser = launch(&chromium, &dir.path().join("profile"));
    let tab = browser.new_tab().expect("open a tab");
    tab.set_default_timeout(PAGE_DEADLINE);
    tab.navigate_to(&format!("{}/?q=zebras", demo.url))
        .and_then(|t| t.wait_until_navigated())
        .expect("load the page");
    eval(&tab, "window.__xss = 0");
    wait_js(
        &tab,
        "both hostile pages listed",
        PAGE_DEADLINE,
        "document.querySelectorAll('#results .hit').length === 2",
    );
    let titles = eval(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#results .hit .title')].map(t => t.textContent).sort())",
    );
    let titles: serde_json::Value =
        serde_json::from_str(titles.as_str().unwrap_or("null")).unwrap();
    let mut expected: Vec<&str> = HOSTILE_TITLES.to_vec();
    expected.sort();
    assert_eq!(titles, serde_json::json!(expected));
    assert_eq!(
        eval(
            &tab,
            "document.querySelectorAll('#results img, #results script').length"
        ),
        0
    );
    assert_eq!(
        eval(
            &tab,
            "document.querySelectorAll('#results [onmouseover], #results [onerror]').length"
        ),
        0
    );
    // The same titles as suggestions: listed as text.
    type_prefix(&tab, "<img");
    wait_suggested(&tab, HOSTILE_TITLES[0]);
    type_prefix(&tab, "<script");
    wait_suggested(&tab, HOSTILE_TITLES[1]);
    assert_eq!(
        eval(
            &tab,
            "document.querySelectorAll('#suggestions img, #suggestions script, #suggestions [onerror]').length"
        ),
        0
    );
    std::thread::sleep(Duration::from_millis(300)); // an onerror would have fired by now
    assert_eq!(eval(&tab, "window.__xss"), 0, "markup from the index ran");
}
