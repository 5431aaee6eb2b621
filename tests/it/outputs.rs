//! What saescope writes, and what it refuses: `-o` onto symlinks, FIFOs, devices, read-only
//! files and `-`; new files' modes; stale partial cache files; impossible option values;
//! reproducible JSON; control characters in user text.

use crate::common;

use common::{saescope, tiny, tiny_args};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `report --format csv --layers 6` of the tiny weights, written with `-o PATH`.
fn report_to(path: &std::path::Path) -> std::process::Output {
    tiny_args(&mut saescope()).args(["report", "--format", "csv", "--layers", "6", "-o"]).arg(path).output().expect("run")
}

fn expected() -> String {
    let out = tiny_args(&mut saescope()).args(["report", "--format", "csv", "--layers", "6"]).output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn output_onto_a_symlink_writes_its_target() {
    let dir = tempfile::tempdir().expect("tmp");
    let (target, link) = (dir.path().join("real.csv"), dir.path().join("link.csv"));
    std::fs::write(&target, "old").expect("write");
    std::os::unix::fs::symlink("real.csv", &link).expect("link");
    let out = report_to(&link);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).expect("meta").file_type().is_symlink(), "the link stays a link");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), expected());
    // A dangling link is written through too, creating its target.
    let (missing, dangling) = (dir.path().join("new.csv"), dir.path().join("dangling.csv"));
    std::os::unix::fs::symlink(&missing, &dangling).expect("link");
    assert!(report_to(&dangling).status.success());
    assert_eq!(std::fs::read_to_string(&missing).expect("read"), expected());
    // A loop is named as one.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::os::unix::fs::symlink(&b, &a).expect("link");
    std::os::unix::fs::symlink(&a, &b).expect("link");
    let out = report_to(&a);
    assert!(!out.status.success() && text(&out.stderr).contains("symlink loop"), "{}", text(&out.stderr));
}

#[test]
fn output_onto_a_fifo_or_dev_null_writes_directly() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read fifo"))
    };
    let out = report_to(&fifo);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(reader.join().expect("reader"), expected());
    assert!(std::fs::symlink_metadata(&fifo).expect("meta").file_type().is_fifo_like(), "still a FIFO");

    let out = report_to(std::path::Path::new("/dev/null"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let meta = std::fs::metadata("/dev/null").expect("meta");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()), "/dev/null is still a device");

    let out = report_to(std::path::Path::new("-"));
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), expected(), "-o - is standard output");
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn a_read_only_file_is_refused_and_new_files_follow_the_umask() {
    let dir = tempfile::tempdir().expect("tmp");
    let ro = dir.path().join("ro.csv");
    std::fs::write(&ro, "keep me").expect("write");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let out = report_to(&ro);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("read-only") && err.contains("chmod u+w"), "{err}");
    assert_eq!(std::fs::read_to_string(&ro).expect("read"), "keep me");
    assert_eq!(std::fs::metadata(&ro).expect("meta").permissions().mode() & 0o777, 0o444);

    let new = dir.path().join("new.csv");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 027 && exec \"$0\" report --format csv --layers 6 --model-dir {} --sae-dir {} -o {}",
            tiny().join("model").display(),
            tiny().join("saes").display(),
            new.display()
        ))
        .arg(env!("CARGO_BIN_EXE_saescope"))
        .env("SAESCOPE_CACHE_DIR", common::cache_dir())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(&new).expect("meta").permissions().mode() & 0o777, 0o640);
    // Replacing a file keeps its mode.
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o604)).expect("chmod");
    assert!(report_to(&new).status.success());
    assert_eq!(std::fs::metadata(&new).expect("meta").permissions().mode() & 0o777, 0o604);
    let leftovers: Vec<_> =
        std::fs::read_dir(dir.path()).expect("dir").filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "no temp files: {leftovers:?}");
}

#[test]
fn stale_partial_cache_files_are_removed_at_start_and_held_ones_kept() {
    let cache = tempfile::tempdir().expect("tmp");
    let stale = cache.path().join(".partial-stale1");
    let held = cache.path().join(".partial-held1");
    std::fs::write(&stale, vec![0u8; 1000]).expect("write");
    std::fs::write(&held, vec![0u8; 1000]).expect("write");
    // Another saescope writing: it holds the lock, as cache::Writer does.
    let holder = std::fs::File::open(&held).expect("open");
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc_flock(holder.as_raw_fd()) }, 0);
    let out = tiny_args(&mut saescope()).args(["report", "--layers", "6", "--cache-dir"]).arg(cache.path()).output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("removed 1 partial cache files"), "{}", text(&out.stderr));
    assert!(!stale.exists() && held.exists());
    drop(holder);
}

extern "C" {
    fn flock(fd: i32, op: i32) -> i32;
}

/// flock(fd, LOCK_EX | LOCK_NB).
unsafe fn libc_flock(fd: i32) -> i32 {
    flock(fd, 2 | 4)
}

#[test]
fn impossible_option_values_are_refused_with_the_range() {
    for (args, says) in [
        (vec!["--threshold", "NaN"], "finite number"),
        (vec!["--threshold", "inf"], "finite number"),
        (vec!["--threshold", "-1"], "0 or more"),
        (vec!["--max-memory", "NaN"], "above 0"),
        (vec!["--max-memory", "-5"], "above 0"),
        (vec!["--batch-tokens", "0"], "1..=1048576"),
        (vec!["--top-k", "0"], "1..=10000"),
        (vec!["--threads", "0"], "1..=1024"),
        (vec!["--download-timeout", "0"], "above 0"),
    ] {
        let out = tiny_args(&mut saescope()).arg("report").args(&args).output().expect("run");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[0]) && err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn json_reports_are_byte_identical_across_runs() {
    let runs: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let out = tiny_args(&mut saescope())
                .args(["report", "--format", "json", "--layers", "6,8,10,11", "--no-cache", "--batch-tokens", "64"])
                .output()
                .expect("run");
            assert!(out.status.success(), "{}", text(&out.stderr));
            out.stdout
        })
        .collect();
    assert!(runs[0] == runs[1] && runs[1] == runs[2], "three --no-cache runs differ");
}

#[test]
fn control_characters_in_user_text_are_escaped_in_text_outputs() {
    let dir = tempfile::tempdir().expect("tmp");
    let samples = dir.path().join("s.toml");
    std::fs::write(
        &samples,
        "[[category]]\nname = \"Evil\\u001b[2J\"\ntexts = [\"one text\", \"two\\u0007 text\"]\n[[category]]\nname = \"Plain\"\ntexts = [\"three\"]\n",
    )
    .expect("write");
    let out = tiny_args(&mut saescope()).args(["report", "--layers", "6", "--samples"]).arg(&samples).output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(!s.contains('\x1b') && s.contains("Evil\\u{1b}[2J"), "{s}");
    let out = tiny_args(&mut saescope()).args(["findings", "--layers", "6,8", "--samples"]).arg(&samples).output().expect("run");
    assert!(out.status.success() && !text(&out.stdout).contains('\x1b'), "{}", text(&out.stdout));
}

#[test]
fn search_leaves_out_labels_past_the_sae_width() {
    let dir = tempfile::tempdir().expect("tmp");
    let labels = dir.path().join("l.jsonl");
    std::fs::write(&labels, "{\"layer\":\"6-res-jb\",\"index\":\"99999\",\"description\":\"python far away\"}\n").expect("write");
    let out = tiny_args(&mut saescope()).args(["search", "python", "--layers", "6", "--labels"]).arg(&labels).output().expect("run");
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("feature 99999 is past SAE 6 res 512's 512 features"), "{err}");
}

#[test]
fn a_symlink_loop_is_named_as_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::os::unix::fs::symlink(&b, &a).expect("link");
    std::os::unix::fs::symlink(&a, &b).expect("link");
    let out = saescope().arg("report").arg("--model-dir").arg(&a).arg("--sae-dir").arg(tiny().join("saes")).output().expect("run");
    assert!(!out.status.success() && text(&out.stderr).contains("it is a symlink loop"), "{}", text(&out.stderr));
    let out = saescope().args(["search", "x", "--labels"]).arg(&a).output().expect("run");
    assert!(!out.status.success() && text(&out.stderr).contains("it is a symlink loop"), "{}", text(&out.stderr));
}
