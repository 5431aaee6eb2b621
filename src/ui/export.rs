//! `e`: the current view as CSV. Every visible feature table's rows, then the specialist
//! matrix in long form; written atomically with a timestamped name.

use crate::analysis::neuronpedia_id;
use crate::ui::app::App;
use color_eyre::eyre::{eyre, Result};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub const HEADER: [&str; 10] = ["section", "category", "layer", "rank", "feature", "activation", "specialist", "share", "n_above", "neuronpedia"];

pub fn view_csv(app: &App) -> Result<String> {
    let la = app.layer_analysis().ok_or_else(|| eyre!("nothing to export yet: results are still computing"))?;
    let layer = app.layer();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    for c in app.table_categories() {
        let name = &app.categories[c].0;
        for (rank, t) in la.categories[c].ranked.iter().enumerate() {
            w.write_record([
                "table".into(),
                name.clone(),
                layer.to_string(),
                (rank + 1).to_string(),
                t.feature.to_string(),
                t.activation.to_string(),
                t.specialist.to_string(),
                t.share.to_string(),
                t.n_above.to_string(),
                neuronpedia_id(layer, t.feature),
            ])?;
        }
    }
    let features = app.matrix_features();
    for (rank, (f, row)) in features.iter().zip(la.above.matrix(&features)).enumerate() {
        for (c, score) in row.iter().enumerate() {
            let (name, rank, feature) = (app.categories[c].0.clone(), (rank + 1).to_string(), f.to_string());
            w.write_record(["matrix".into(), name, layer.to_string(), rank, feature, String::new(), score.to_string(), String::new(), String::new(), neuronpedia_id(layer, *f)])?;
        }
    }
    String::from_utf8(w.into_inner().map_err(|e| eyre!("csv: {e}"))?).map_err(|e| eyre!("csv: {e}"))
}

/// Writes the view to `export_dir/saescope-L{layer}-{UTC timestamp}.csv`.
pub fn export(app: &App) -> Result<PathBuf> {
    let csv = view_csv(app)?;
    let path = app.export_dir.join(format!("saescope-L{}-{}.csv", app.layer(), utc_stamp(SystemTime::now())));
    crate::fsio::write_atomic(&path, csv.as_bytes())?;
    Ok(path)
}

/// `YYYYmmdd-HHMMSS` in UTC, from the civil-from-days algorithm (no date crate needed for one name).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}
