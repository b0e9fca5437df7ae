//! Metric thresholds: `fail_if: < 1000` on the value itself, `fail_if_change: > 20%` on its
//! change relative to the last recorded run of the same check.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "=",
            Op::Ne => "!=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// `OP NUMBER`, or for a relative threshold `OP NUMBER%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub op: Op,
    pub value: f64,
    /// Compared with |value - previous| / |previous|, in percent.
    pub relative: bool,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.op.symbol(), self.value, if self.relative { "%" } else { "" })
    }
}

impl Threshold {
    pub fn parse(text: &str, relative: bool) -> Result<Self, String> {
        let t = text.trim();
        let (op, rest) = [("<=", Op::Le), (">=", Op::Ge), ("!=", Op::Ne), ("<>", Op::Ne), ("<", Op::Lt), (">", Op::Gt), ("=", Op::Eq)]
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|rest| (*op, rest.trim())))
            .ok_or_else(|| format!("`{t}` should start with <, <=, >, >=, = or !="))?;
        let number = if relative {
            rest.strip_suffix('%').ok_or_else(|| format!("`{t}`: a change is given in percent, e.g. `> 20%`"))?.trim()
        } else {
            rest
        };
        let value: f64 = number.parse().map_err(|_| format!("`{number}` is not a number"))?;
        if !value.is_finite() {
            return Err(format!("`{number}` is not a finite number"));
        }
        Ok(Self { op, value, relative })
    }

    /// Why `value` trips this threshold, or `None` when it does not. A relative threshold
    /// without a previous value (first run) or from a zero baseline does not trip.
    pub fn tripped(&self, value: f64, previous: Option<f64>) -> Option<String> {
        if !self.relative {
            return self.op.holds(value, self.value).then(|| format!("value {value} {self}"));
        }
        let previous = previous.filter(|p| *p != 0.0)?;
        let change = (value - previous).abs() / previous.abs() * 100.0;
        self.op
            .holds(change, self.value)
            .then(|| format!("value {value} changed by {change:.1}% from {previous} (limit {self})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative() {
        let t = Threshold::parse("< 1000", false).unwrap();
        assert_eq!(t.tripped(999.0, None).as_deref(), Some("value 999 < 1000"));
        assert_eq!(t.tripped(1000.0, None), None);
        let r = Threshold::parse(">20%", true).unwrap();
        // 1300 from 1000 is +30%: trips; 1150 is +15%: does not; 700 is -30%: trips.
        assert!(r.tripped(1300.0, Some(1000.0)).unwrap().contains("30.0%"));
        assert_eq!(r.tripped(1150.0, Some(1000.0)), None);
        assert!(r.tripped(700.0, Some(1000.0)).is_some());
        assert_eq!(r.tripped(1e9, None), None, "no baseline on the first run");
        assert!(Threshold::parse("> 20", true).unwrap_err().contains("percent"));
        assert!(Threshold::parse("about 3", false).is_err());
        assert!(Threshold::parse("< NaN", false).is_err());
    }
}
