//! Normalizers: canonical forms of emails, phone numbers and names, and phonetic keys, so that
//! equal identities compare equal (as join or blocking keys) before any fuzzy scoring.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use arrow::datatypes::DataType;
use datafusion::common::utils::take_function_args;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use crate::common::{
    Shape, StringArg, decode_dictionaries, string_array, string_coercion, string_return_type,
};

pub(crate) mod normalize_email;
pub(crate) mod normalize_name;
pub(crate) mod normalize_phone;
pub(crate) mod soundex;

pub(crate) const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Identity Normalization Functions",
    description: Some("Canonical forms of emails, phone numbers and names; phonetic keys."),
};

/// The scalar UDFs of this module.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![
        UnaryUdf::<normalize_email::NormalizeEmail>::udf(),
        UnaryUdf::<normalize_name::NormalizeName>::udf(),
        UnaryUdf::<soundex::Soundex>::udf(),
        ScalarUDF::from(normalize_phone::NormalizePhone::new()),
    ]
}

/// A one-string-in, one-string-out normalizer.
pub(crate) trait StringMap: Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    const NAME: &'static str;

    /// `None` when the input has no canonical form (the SQL result is then NULL).
    fn apply(value: &str) -> Option<String>;

    fn documentation() -> &'static Documentation;
}

/// The scalar UDF for any [`StringMap`]: `name(str)`, returning the input's string layout.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct UnaryUdf<M> {
    signature: Signature,
    map: PhantomData<M>,
}

impl<M: StringMap> UnaryUdf<M> {
    fn udf() -> ScalarUDF {
        ScalarUDF::from(Self {
            signature: Signature::coercible(vec![string_coercion()], Volatility::Immutable),
            map: PhantomData,
        })
    }
}

impl<M: StringMap> ScalarUDFImpl for UnaryUdf<M> {
    fn name(&self) -> &str {
        M::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let [input] = take_function_args(M::NAME, arg_types)?;
        Ok(string_return_type(input))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let shape = Shape::of(&args.args, args.number_rows);
        let return_type = args.return_type().clone();
        let args = decode_dictionaries(args.args)?;
        let [input] = take_function_args(M::NAME, &args)?;
        let input = StringArg::try_new(input, M::NAME)?;
        let values = (0..shape.rows).map(|row| input.get(row).and_then(M::apply));
        shape.finish(string_array(&return_type, values))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(M::documentation())
    }
}

/// Documentation of a one-string function; `example` is a SQL call and `result` its answer.
pub(crate) fn unary_doc(
    description: &str,
    syntax: &str,
    example: &str,
    result: &str,
) -> Documentation {
    Documentation::builder(DOC_SECTION, description, syntax)
        .with_sql_example(format!("```sql\n> SELECT {example};\n{result}\n```"))
        .with_argument("str", "String expression (any string type).")
        .build()
}
