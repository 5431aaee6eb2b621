//! `saescope findings`: the seed's four findings checked on this data.

use super::analysed;
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common};

pub fn findings(c: &Common, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let (done, analysis) = analysed(c)?;
    let list = saescope::findings::findings(&analysis, &done.set.categories);
    super::emit(&list, format, |x| saescope::findings::text(x), output)
}
