//! `saescope findings`: the seed's four findings checked on this data, or on two runs side
//! by side (`--versus-model`), each over the same samples.

use super::analysed;
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common, Versus};

pub fn findings(c: &Common, versus: &Versus, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let (done, analysis) = analysed(c)?;
    let list = saescope::findings::findings(&analysis, &done.set.categories);
    let Some(second) = versus.common(c) else {
        return super::emit(&list, format, |x| saescope::findings::text(x), output);
    };
    let (done2, analysis2) = analysed(&second)?;
    let list2 = saescope::findings::findings(&analysis2, &done2.set.categories);
    let runs = [(c.run_label(), list), (second.run_label(), list2)];
    let compared = saescope::findings::side_by_side(&runs);
    super::emit(&compared, format, |x| saescope::findings::side_by_side_text(x), output)
}
