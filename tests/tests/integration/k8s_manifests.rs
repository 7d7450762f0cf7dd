//! The Kubernetes manifests of `deploy/k8s/` checked against their cluster file (no
//! Kubernetes runs here, so this is what can be checked): the cluster file loads, its
//! `[[node_set]]` names the StatefulSet's pods under the headless Service (ids
//! `search-0..`, count = replicas, rpc port = the container and Service port), the
//! front-end's listen port is its container's and its Service's target port, each
//! indexer Job is Indexed with completions = parallelism = its `--nodes`, every pod
//! mounts the ConfigMap the kustomization generates from that file, and the
//! PodDisruptionBudget lets one node down at a time.
//!
//! The manifests are read as text (`key: value` lines and flow maps; the workspace has no
//! YAML parser and this does not justify one): each check names the file and field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use searcher::cluster::ClusterConfig;
use tests::workspace_root;

fn k8s_dir() -> PathBuf {
    workspace_root().join("deploy/k8s")
}

/// The documents of a manifest file, by `kind/name`.
fn documents(file: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(k8s_dir().join(file)).expect(file);
    text.split("\n---\n")
        .map(|doc| {
            let kind = field(doc, "kind").unwrap_or_else(|| panic!("{file}: a kind"));
            let name = metadata_name(doc).unwrap_or_else(|| panic!("{file}: a {kind} name"));
            (format!("{kind}/{name}"), doc.to_string())
        })
        .collect()
}

/// The first value of `key:` in `doc` (a line or a flow map), unquoted.
fn field(doc: &str, key: &str) -> Option<String> {
    fields(doc, key).into_iter().next()
}

/// Every value of `key:` in `doc`, in order.
fn fields(doc: &str, key: &str) -> Vec<String> {
    let needle = format!("{key}: ");
    let mut values = Vec::new();
    for (at, _) in doc.match_indices(&needle) {
        let before = doc[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric()) {
            continue; // `serviceName:` is not `name:`
        }
        let rest = &doc[at + needle.len()..];
        let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
        values.push(rest[..end].trim().trim_matches('"').to_string());
    }
    values
}

/// `metadata.name`: the first `name:` after `metadata:`.
fn metadata_name(doc: &str) -> Option<String> {
    let metadata = doc.find("metadata:")?;
    field(&doc[metadata..], "name")
}

/// The value after `flag` in a container's command list.
fn command_arg(doc: &str, flag: &str) -> Option<String> {
    let at = doc.find(&format!("{flag}, "))?;
    let rest = &doc[at + flag.len() + 2..];
    let end = rest.find([',', ']', '\n'])?;
    Some(rest[..end].trim().trim_matches('"').to_string())
}

fn number(doc: &str, key: &str) -> u64 {
    field(doc, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in:\n{doc}"))
}

#[test]
fn k8s_manifests_agree_with_their_cluster_file() {
    let config = ClusterConfig::load(&k8s_dir().join("cluster.toml")).expect("cluster file");
    let searchers = documents("searchers.yaml");
    let sts = &searchers["StatefulSet/search"];
    let service = &searchers["Service/search"];
    assert_eq!(
        field(service, "clusterIP").as_deref(),
        Some("None"),
        "headless"
    );
    assert_eq!(field(sts, "serviceName").as_deref(), Some("search"));
    let replicas = number(sts, "replicas");
    assert_eq!(replicas, config.nodes.len() as u64, "StatefulSet replicas");
    for (i, node) in config.nodes.iter().enumerate() {
        assert_eq!(node.id, format!("search-{i}"), "pod names are the node ids");
        assert_eq!(
            node.rpc.host(),
            format!("search-{i}.search"),
            "pod DNS names"
        );
        assert_eq!(u64::from(node.rpc.port()), number(sts, "containerPort"));
        assert_eq!(u64::from(node.rpc.port()), number(service, "port"));
    }
    assert_eq!(command_arg(sts, "--id").as_deref(), Some("$(POD_NAME)"));
    let pdb = &searchers["PodDisruptionBudget/search"];
    assert_eq!(number(pdb, "maxUnavailable"), 1);

    let frontend = documents("frontend.yaml");
    let port = u64::from(config.frontend.listen.port());
    assert_eq!(
        number(&frontend["Deployment/frontend"], "containerPort"),
        port
    );
    assert_eq!(number(&frontend["Service/frontend"], "targetPort"), port);

    let jobs = documents("indexer-jobs.yaml");
    for name in ["Job/wikisearch-links", "Job/wikisearch-indexer"] {
        let job = &jobs[name];
        assert_eq!(
            field(job, "completionMode").as_deref(),
            Some("Indexed"),
            "{name}"
        );
        let nodes: u64 = command_arg(job, "--nodes")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: --nodes"));
        assert_eq!(number(job, "completions"), nodes, "{name}: completions");
        assert_eq!(number(job, "parallelism"), nodes, "{name}: parallelism");
        assert_eq!(
            command_arg(job, "--node").as_deref(),
            Some("$(JOB_COMPLETION_INDEX)"),
            "{name}"
        );
    }

    let kustomization =
        std::fs::read_to_string(k8s_dir().join("kustomization.yaml")).expect("kustomization");
    for file in [
        "indexer-jobs.yaml",
        "searchers.yaml",
        "frontend.yaml",
        "cluster.toml",
    ] {
        assert!(
            kustomization.contains(&format!("- {file}")),
            "{file} not listed"
        );
    }
    let config_map = field(&kustomization, "name").expect("configMapGenerator name");
    for doc in [sts, &frontend["Deployment/frontend"]] {
        assert!(
            fields(doc, "configMap")
                .iter()
                .any(|v| v.contains(&config_map)),
            "a pod without the ConfigMap {config_map}"
        );
    }
}
