//! persona-udfs: identity-resolution functions for DataFusion.
//!
//! Layout: `fuzzy/` (similarity and distance), `normalize/` (email, phone, name, phonetic keys),
//! `merge/` (survivorship aggregates), one function per file; `kernels` exposes the scalar
//! functions to Rust callers; `common` holds the string-argument
//! plumbing the scalar functions share. [`register_all`] adds everything to a session.
//!
//! Every scalar function accepts Utf8, LargeUtf8, Utf8View and dictionary-encoded strings, as
//! columns or constants, returns NULL for NULL input, and works on Unicode characters (never
//! bytes). DataFusion's built-in `levenshtein` is left as it is; nothing here shadows a built-in.

mod common;
mod fuzzy;
pub mod kernels;
mod merge;
mod normalize;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// Registers every persona UDF with the session.
///
/// Call it after the session is built: registering adds to the built-in functions, whereas
/// building a session with an explicit function list would replace them.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    for udf in fuzzy::udfs().into_iter().chain(normalize::udfs()) {
        ctx.register_udf(udf);
    }
    for udaf in merge::udafs() {
        ctx.register_udaf(udaf);
    }
    Ok(())
}
