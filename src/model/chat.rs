//! A model's chat template, for `--chat`: instruction-tuned models (Gemma 3's `-it`, and the
//! SAEs trained on them, as Gemma Scope 2's `-it` releases are) read text as a user turn,
//! and their features are those of text in that frame. The template is the checkpoint's own
//! Jinja (`chat_template.jinja`, or `tokenizer_config.json`'s `chat_template`), rendered as
//! transformers' `apply_chat_template([{"role": "user", "content": text}],
//! add_generation_prompt=True)` renders it: trimmed blocks, Python's string methods, its
//! `raise_exception` and `strftime_now`. tests/it/chat.rs holds the rendering to
//! transformers' on the same files (scripts/reference_chat.py).

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The files a model folder may hold its template in, in the order transformers reads them.
pub const TEMPLATE_FILES: [&str; 2] = ["chat_template.jinja", "tokenizer_config.json"];

pub struct ChatTemplate {
    env: Environment<'static>,
    /// Special tokens the template may name (`bos_token`, `eos_token`...).
    specials: serde_json::Map<String, Value>,
    /// Where the template came from, for errors.
    pub source: PathBuf,
}

/// A special token in tokenizer_config.json: a string, or an AddedToken's `{"content": ...}`.
fn token_text(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("content").and_then(Value::as_str))
}

impl ChatTemplate {
    /// The template of the model folder holding `files` (any of `TEMPLATE_FILES` beside each
    /// other); None where it has none.
    pub fn from_files(files: &[PathBuf]) -> Result<Option<Self>> {
        let find = |name: &str| files.iter().find(|p| p.file_name().is_some_and(|f| f == name));
        let config: Option<Value> = match find("tokenizer_config.json") {
            Some(p) => {
                let text = std::fs::read_to_string(p).wrap_err_with(|| format!("cannot read {}", p.display()))?;
                Some(serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON; download the model again", p.display()))?)
            }
            None => None,
        };
        let (source, template) = match (find("chat_template.jinja"), &config) {
            (Some(p), _) => (p.clone(), std::fs::read_to_string(p).wrap_err_with(|| format!("cannot read {}", p.display()))?),
            (None, Some(c)) => {
                let path = find("tokenizer_config.json").cloned().unwrap_or_default();
                let template = match c.get("chat_template") {
                    None | Some(Value::Null) => return Ok(None),
                    Some(Value::String(s)) => s.clone(),
                    // Several named templates: transformers' default is the one named "default".
                    Some(Value::Array(named)) => named
                        .iter()
                        .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                        .and_then(|t| t.get("template").and_then(Value::as_str))
                        .ok_or_else(|| eyre!("{}: chat_template lists no template named \"default\"", path.display()))?
                        .to_string(),
                    Some(_) => bail!("{}: chat_template is neither a string nor a list of named templates", path.display()),
                };
                (path, template)
            }
            (None, None) => return Ok(None),
        };
        let mut specials = serde_json::Map::new();
        if let Some(Value::Object(c)) = &config {
            for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
                if let Some(t) = c.get(key).and_then(token_text) {
                    specials.insert(key.into(), Value::String(t.into()));
                }
            }
        }
        Ok(Some(Self::new(template, specials, source)?))
    }

    /// `template` with the special tokens `specials` names (`bos_token`...); `source` names
    /// it in errors.
    pub fn new(template: String, specials: serde_json::Map<String, Value>, source: PathBuf) -> Result<Self> {
        let mut env = Environment::new();
        // transformers compiles templates with trim_blocks and lstrip_blocks, in Python,
        // where `str` has methods (`.strip()`, `.startswith()`) that Jinja itself lacks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> std::result::Result<String, Error> { Err(Error::new(ErrorKind::InvalidOperation, message)) });
        env.add_function("strftime_now", |format: String| strftime(&format, today()));
        // transformers' own `tojson`: Python's json.dumps, not minijinja's HTML-safe one.
        env.add_filter("tojson", |value: minijinja::Value, kwargs: minijinja::value::Kwargs| -> std::result::Result<String, Error> {
            let indent: Option<usize> = kwargs.get("indent")?;
            kwargs.assert_all_used()?;
            let mut out = String::new();
            python_json(&value, indent, 0, &mut out)?;
            Ok(out)
        });
        env.add_template_owned("chat", template).map_err(|e| eyre!("{}: the chat template does not parse: {e}", source.display()))?;
        Ok(Self { env, specials, source })
    }

    /// `text` as the one user turn, followed by the model's turn's opening.
    pub fn render_user(&self, text: &str) -> Result<String> {
        let template = self.env.get_template("chat").map_err(|e| eyre!("internal: {e}"))?;
        let mut ctx = self.specials.clone();
        ctx.insert("messages".into(), serde_json::json!([{"role": "user", "content": text}]));
        ctx.insert("add_generation_prompt".into(), Value::Bool(true));
        template.render(Value::Object(ctx)).map_err(|e| eyre!("{}: rendering the chat template failed: {e}", self.source.display()))
    }
}

/// `json.dumps(value, ensure_ascii=False, indent=indent)` as Python writes it: ", " and
/// ": " between items without an indent, "," and a new line with one; keys in their order.
fn python_json(v: &minijinja::Value, indent: Option<usize>, level: usize, out: &mut String) -> std::result::Result<(), Error> {
    use minijinja::value::ValueKind;
    let quoted = |s: &str| serde_json::to_string(s).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()));
    let (open, close, is_map) = match v.kind() {
        ValueKind::Undefined | ValueKind::None => {
            out.push_str("null");
            return Ok(());
        }
        ValueKind::Bool => {
            out.push_str(if v.is_true() { "true" } else { "false" });
            return Ok(());
        }
        ValueKind::Number => {
            out.push_str(&v.to_string());
            return Ok(());
        }
        ValueKind::String => {
            out.push_str(&quoted(v.as_str().unwrap_or_default())?);
            return Ok(());
        }
        ValueKind::Map => ('{', '}', true),
        ValueKind::Seq | ValueKind::Iterable => ('[', ']', false),
        other => return Err(Error::new(ErrorKind::InvalidOperation, format!("tojson: cannot write a {other}"))),
    };
    let items: Vec<minijinja::Value> = v.try_iter()?.collect();
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        match indent {
            Some(n) => {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&" ".repeat(n * (level + 1)));
            }
            None if i > 0 => out.push_str(", "),
            None => {}
        }
        if is_map {
            out.push_str(&quoted(&item.to_string())?);
            out.push_str(": ");
            python_json(&v.get_item(item)?, indent, level + 1, out)?;
        } else {
            python_json(item, indent, level + 1, out)?;
        }
    }
    if let (Some(n), false) = (indent, items.is_empty()) {
        out.push('\n');
        out.push_str(&" ".repeat(n * level));
    }
    out.push(close);
    Ok(())
}

/// Days since 1970-01-01 (UTC) as (year, month 1-12, day 1-31): Howard Hinnant's
/// civil_from_days.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn today() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64 / 86_400)
}

/// Python's `strftime` for the date fields templates use (Llama 3's "%d %b %Y").
fn strftime(format: &str, days: i64) -> std::result::Result<String, Error> {
    const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    let (y, m, d) = civil(days);
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('b') => out.push_str(&month[..3]),
            Some('B') => out.push_str(month),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::new(ErrorKind::InvalidOperation, format!("strftime_now: %{} is not supported", other.map(String::from).unwrap_or_default())))
            }
        }
    }
    Ok(out)
}

/// The template files present in `dir`.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    TEMPLATE_FILES.iter().map(|f| dir.join(f)).filter(|p| p.is_file()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_render_as_python_formats_them() {
        // 2024-07-26 is day 19,930 since 1970-01-01.
        assert_eq!(super::strftime("%d %b %Y", 19_930).expect("date"), "26 Jul 2024");
        assert_eq!(super::strftime("%Y-%m-%d %B %y %%", 0).expect("date"), "1970-01-01 January 70 %");
        assert_eq!(super::civil(-1), (1969, 12, 31));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
        assert!(super::strftime("%H", 0).is_err());
    }
}
