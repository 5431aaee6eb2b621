//! The recipes for indexing past one machine are files (deploy/), and the Kubernetes Jobs
//! run the very commands of the Slurm scripts that scripts/slurm-test runs on a real Slurm:
//! the same `saescope index` line once the scheduler's names for shard, count and threads
//! are set aside, each manifest parsing as YAML.

use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `saescope ...` command of a script (continuation lines joined), scheduler names
/// replaced by K (the shard), N (the count) and T (the threads).
fn command(script: &str) -> String {
    let joined = script.replace("\\\n", " ");
    let line = joined
        .lines()
        .map(str::trim)
        .find(|l| l.contains("saescope") && l.contains(" index "))
        .unwrap_or_else(|| panic!("no saescope index line in\n{script}"));
    let mut c = line.to_string();
    for (from, to) in [
        ("\"${SAESCOPE:-saescope}\"", "saescope"),
        ("$SLURM_ARRAY_TASK_ID", "K"),
        ("$JOB_COMPLETION_INDEX", "K"),
        ("$SLURM_ARRAY_TASK_COUNT", "N"),
        ("$SHARDS", "N"),
        ("$threads", "T"),
        ("$THREADS", "T"),
    ] {
        c = c.replace(from, to);
    }
    c.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn job(path: &str) -> Yaml {
    let docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    let doc = docs.into_iter().next().expect("doc");
    assert_eq!(doc["kind"].as_str(), Some("Job"), "{path}");
    doc
}

fn container(doc: &Yaml) -> &Yaml {
    &doc["spec"]["template"]["spec"]["containers"][0]
}

fn env(c: &Yaml, name: &str) -> Option<String> {
    c["env"].as_vec()?.iter().find(|e| e["name"].as_str() == Some(name)).and_then(|e| e["value"].as_str().map(str::to_string))
}

#[test]
fn slurm_scripts_are_scripts_sbatch_takes() {
    for path in ["deploy/slurm/index.sbatch", "deploy/slurm/merge.sbatch", "deploy/slurm/submit"] {
        assert!(read(path).starts_with("#!/bin/bash\n"), "{path}: sbatch rejects a script without a #! first line");
    }
    assert!(read("deploy/slurm/index.sbatch").contains("SAESCOPE_EXACT_ENCODE"), "every shard encodes alike");
}

#[test]
fn the_kubernetes_jobs_run_the_slurm_commands() {
    let index = job("deploy/kubernetes/index.yaml");
    let c = container(&index);
    let script = c["command"].as_vec().and_then(|v| v.last()).and_then(Yaml::as_str).expect("sh -c SCRIPT");
    assert_eq!(command(script), command(&read("deploy/slurm/index.sbatch")));
    assert_eq!(env(c, "SAESCOPE_EXACT_ENCODE").as_deref(), Some("1"));
    assert_eq!(env(c, "SHARDS").and_then(|s| s.parse::<i64>().ok()), index["spec"]["completions"].as_i64(), "SHARDS is the Job's completions");
    assert_eq!(index["spec"]["completionMode"].as_str(), Some("Indexed"));
    let merge = job("deploy/kubernetes/merge.yaml");
    let m = container(&merge);
    let script = m["command"].as_vec().and_then(|v| v.last()).and_then(Yaml::as_str).expect("sh -c SCRIPT");
    assert_eq!(command(script), command(&read("deploy/slurm/merge.sbatch")));
    assert_eq!(env(c, "SAESCOPE_INDEX_ARGS"), env(m, "SAESCOPE_INDEX_ARGS"), "the merge takes the shards' options");
}

#[test]
fn the_command_comparison_sees_a_difference() {
    assert_ne!(command("saescope index $A --shard \"$JOB_COMPLETION_INDEX/$SHARDS\""), command("saescope index $A --shard \"$SHARDS/$JOB_COMPLETION_INDEX\""));
}
