//! Group rules (the second vendor's attribute-based group mapping): profile-field
//! conditions put a person into learning-platform groups. Rules only add, unless a
//! rule says to remove the person when it stops matching.

use roster_api::DirectoryUserSpec;
use roster_api::tenant::{FieldOperator, GroupRule, ProfileField};

/// The groups a person should be in, given the groups computed last time.
/// Sorted and without duplicates, so an unchanged result never rewrites status.
pub fn compute(rules: &[GroupRule], spec: &DirectoryUserSpec, previous: &[String]) -> Vec<String> {
    let mut groups: Vec<String> = previous
        .iter()
        .filter(|group| {
            // Drop a group only if some rule for it removes on mismatch and no rule matches.
            let rules_for: Vec<&GroupRule> = rules.iter().filter(|r| &&r.group == group).collect();
            let removable = rules_for.iter().any(|r| r.remove_when_unmatched);
            !removable || rules_for.iter().any(|r| matches(r, spec))
        })
        .cloned()
        .collect();
    groups.extend(
        rules
            .iter()
            .filter(|r| matches(r, spec))
            .map(|r| r.group.clone()),
    );
    groups.sort();
    groups.dedup();
    groups
}

fn matches(rule: &GroupRule, spec: &DirectoryUserSpec) -> bool {
    rule.conditions.iter().all(|condition| {
        // A multi-valued field (the source's groups) is listed when any value is.
        let listed = field_values(spec, condition.field).iter().any(|v| {
            condition
                .values
                .iter()
                .any(|c| c.trim().eq_ignore_ascii_case(v.trim()))
        });
        match condition.operator {
            FieldOperator::In => listed,
            FieldOperator::NotIn => !listed,
        }
    })
}

fn field_values(spec: &DirectoryUserSpec, field: ProfileField) -> Vec<String> {
    let one = match field {
        ProfileField::EmployeeId => Some(spec.employee_id.clone()),
        ProfileField::FullName => Some(spec.full_name.clone()),
        ProfileField::Email => Some(spec.email.clone()),
        ProfileField::PictureUrl => spec.picture_url.clone(),
        ProfileField::HireDate => spec.hire_date.map(|d| d.to_string()),
        ProfileField::TerminationDate => spec.termination_date.map(|d| d.to_string()),
        ProfileField::Department => spec.department.clone(),
        ProfileField::Title => spec.title.clone(),
        ProfileField::Location => spec.location.clone(),
        ProfileField::ManagerEmail => spec.manager_email.clone(),
        ProfileField::Active => Some(spec.active.to_string()),
        ProfileField::Groups => return spec.groups.clone(),
    };
    one.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_api::tenant::FieldCondition;

    fn rule(group: &str, field: ProfileField, values: &[&str], remove: bool) -> GroupRule {
        GroupRule {
            group: group.into(),
            conditions: vec![FieldCondition {
                field,
                operator: FieldOperator::In,
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            remove_when_unmatched: remove,
        }
    }

    fn person(title: &str) -> DirectoryUserSpec {
        DirectoryUserSpec {
            title: Some(title.into()),
            ..Default::default()
        }
    }

    #[test]
    fn rules_add_only_by_default() {
        // The vendor's example: function X → group Y; A or B → group C.
        let rules = [
            rule("Y", ProfileField::Title, &["X"], false),
            rule("C", ProfileField::Title, &["A", "B"], false),
        ];
        let first = compute(&rules, &person("x"), &[]);
        assert_eq!(first, vec!["Y"]);
        // Moving from X to A adds C but keeps Y.
        assert_eq!(compute(&rules, &person("A"), &first), vec!["C", "Y"]);
    }

    #[test]
    fn removal_only_when_the_rule_says_so() {
        let rules = [rule("Y", ProfileField::Title, &["X"], true)];
        assert_eq!(
            compute(&rules, &person("A"), &["Y".into()]),
            Vec::<String>::new()
        );
        // Groups no rule mentions are left alone.
        assert_eq!(
            compute(&rules, &person("A"), &["Manual".into()]),
            vec!["Manual"]
        );
    }

    #[test]
    fn not_in_matches_absent_fields() {
        let mut r = rule("NotSales", ProfileField::Department, &["Sales"], false);
        r.conditions[0].operator = FieldOperator::NotIn;
        assert_eq!(
            compute(&[r], &DirectoryUserSpec::default(), &[]),
            vec!["NotSales"]
        );
    }

    #[test]
    fn a_source_group_maps_to_a_platform_group_when_any_membership_is_listed() {
        // An identity provider's pushed group "Engineering Team" → platform "engineers".
        let rules = [rule(
            "engineers",
            ProfileField::Groups,
            &["engineering team"],
            true,
        )];
        let member = DirectoryUserSpec {
            groups: vec!["All Staff".into(), "Engineering Team".into()],
            ..Default::default()
        };
        assert_eq!(compute(&rules, &member, &[]), vec!["engineers"]);
        // Leaving the source group leaves the platform group (this rule removes).
        let left = DirectoryUserSpec {
            groups: vec!["All Staff".into()],
            ..Default::default()
        };
        assert_eq!(
            compute(&rules, &left, &["engineers".into()]),
            Vec::<String>::new()
        );
        let mut not_in = rule("outsiders", ProfileField::Groups, &["All Staff"], false);
        not_in.conditions[0].operator = FieldOperator::NotIn;
        assert_eq!(
            compute(&[not_in.clone()], &member, &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            compute(&[not_in], &DirectoryUserSpec::default(), &[]),
            vec!["outsiders"]
        );
    }
}
