//! Collects the errors and warnings of one translation.
//!
//! Translation never stops at the first fault: every check reports here and carries on, so one
//! Event can tell the user everything to fix.

use super::Problem;

/// The errors and warnings found so far for one Ingress.
#[derive(Debug)]
pub(crate) struct Problems {
    ingress: String,
    pub(crate) errors: Vec<Problem>,
    pub(crate) warnings: Vec<Problem>,
}

impl Problems {
    /// An empty collector for the Ingress `namespace/name`.
    pub(crate) fn new(ingress: String) -> Self {
        Self {
            ingress,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records something that prevents the load balancer from being built.
    pub(crate) fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let problem = self.problem(field.into(), message.into());
        self.errors.push(problem);
    }

    /// Records something the user should know that does not stop the load balancer.
    pub(crate) fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let problem = self.problem(field.into(), message.into());
        self.warnings.push(problem);
    }

    /// How many errors have been recorded, to tell whether a step added any.
    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    fn problem(&self, field: String, message: String) -> Problem {
        Problem {
            ingress: self.ingress.clone(),
            field,
            message,
        }
    }
}

/// The field path of an annotation, e.g. `metadata.annotations["kubernetes.io/ingress.allow-http"]`.
pub(crate) fn annotation_field(key: &str) -> String {
    format!("metadata.annotations[{key:?}]")
}
