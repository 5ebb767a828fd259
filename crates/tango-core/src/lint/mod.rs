//! The configuration checklist: lint rules for distribution hazards.
