//! The bundled, read-only catalog of AWS managed policies, at their real ARNs
//! (`arn:aws:iam::aws:policy/<Name>`). GetPolicy / GetPolicyVersion answer for them and they can
//! be attached; they cannot be created, changed or deleted. Parsed once, at [`Catalog::new`].

use podid_iam::Policy;

/// The catalog's version of every policy (real AWS ones have many versions; only one is kept).
pub(crate) const VERSION_ID: &str = "v1";
/// The creation date reported for catalog policies.
pub(crate) const CREATE_DATE: &str = "2015-02-06T18:39:46Z";

/// One AWS managed policy.
#[derive(Debug, Clone)]
pub(crate) struct ManagedPolicy {
    pub(crate) name: &'static str,
    pub(crate) arn: String,
    pub(crate) policy_id: String,
    pub(crate) description: &'static str,
    pub(crate) policy: Policy,
}

/// The parsed catalog.
#[derive(Debug)]
pub(crate) struct Catalog {
    policies: Vec<ManagedPolicy>,
}

impl Catalog {
    /// Parses every bundled document; one that fails to parse is logged and left out (a test
    /// asserts that none does).
    pub(crate) fn new() -> Self {
        let policies = DOCUMENTS
            .iter()
            .filter_map(|(name, description, doc)| match Policy::parse(doc) {
                Ok(policy) => Some(ManagedPolicy {
                    name,
                    arn: format!("arn:aws:iam::aws:policy/{name}"),
                    policy_id: stable_id(name),
                    description,
                    policy,
                }),
                Err(error) => {
                    tracing::error!(name, %error, "bundled managed policy does not parse");
                    None
                }
            })
            .collect();
        Self { policies }
    }

    pub(crate) fn get(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.policies.iter().find(|p| p.arn == arn)
    }

    #[cfg(test)]
    pub(crate) fn all(&self) -> &[ManagedPolicy] {
        &self.policies
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

/// A podid-local, stable `ANPA…` id derived from the name (the real ids are not reproduced).
fn stable_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let digest = Sha256::digest(name.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| {
            char::from(
                ALNUM
                    .get(usize::from(*b) % ALNUM.len())
                    .copied()
                    .unwrap_or(b'A'),
            )
        })
        .collect();
    format!("ANPA{tail}")
}

/// (name, description, document).
const DOCUMENTS: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "Provides full access to AWS services and resources.",
        r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*"
        }
    ]
}"#,
    ),
    // Abridged: the real ReadOnlyAccess lists thousands of actions. This one grants the
    // Describe*/Get*/List* families of the common services, which is what callers usually rely on.
    (
        "ReadOnlyAccess",
        "Provides read-only access to AWS services and resources.",
        r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadOnlyAbridged",
            "Effect": "Allow",
            "Action": [
                "cloudtrail:Describe*", "cloudtrail:Get*", "cloudtrail:List*", "cloudtrail:LookupEvents",
                "cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
                "dynamodb:Describe*", "dynamodb:Get*", "dynamodb:List*", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                "ec2:Describe*", "ec2:Get*",
                "ecr:Describe*", "ecr:Get*", "ecr:List*", "ecr:BatchGetImage",
                "eks:Describe*", "eks:List*",
                "elasticloadbalancing:Describe*",
                "iam:Get*", "iam:List*", "iam:Generate*", "iam:Simulate*",
                "kms:Describe*", "kms:Get*", "kms:List*",
                "lambda:Get*", "lambda:List*",
                "logs:Describe*", "logs:Get*", "logs:FilterLogEvents",
                "rds:Describe*", "rds:List*",
                "route53:Get*", "route53:List*",
                "s3:Get*", "s3:List*", "s3:Describe*",
                "secretsmanager:Describe*", "secretsmanager:List*",
                "sns:Get*", "sns:List*",
                "sqs:Get*", "sqs:List*",
                "ssm:Describe*", "ssm:Get*", "ssm:List*",
                "sts:GetCallerIdentity"
            ],
            "Resource": "*"
        }
    ]
}"#,
    ),
    (
        "AmazonS3ReadOnlyAccess",
        "Provides read only access to all buckets via the AWS Management Console.",
        r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "s3:Get*",
                "s3:List*",
                "s3:Describe*",
                "s3-object-lambda:Get*",
                "s3-object-lambda:List*"
            ],
            "Resource": "*"
        }
    ]
}"#,
    ),
    (
        "AmazonS3FullAccess",
        "Provides full access to all buckets via the AWS Management Console.",
        r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "s3:*",
                "s3-object-lambda:*"
            ],
            "Resource": "*"
        }
    ]
}"#,
    ),
    (
        "AmazonEKSWorkerNodePolicy",
        "This policy allows Amazon EKS worker nodes to connect to Amazon EKS Clusters.",
        r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "WorkerNodePermissions",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVolumes",
                "ec2:DescribeVolumesModifications",
                "ec2:DescribeVpcs",
                "eks:DescribeCluster",
                "eks-auth:AssumeRoleForPodIdentity"
            ],
            "Resource": "*"
        }
    ]
}"#,
    ),
    // Abridged: the real policy also grants application-autoscaling, cloudwatch, datapipeline,
    // iam and other reads used by the DynamoDB console.
    (
        "AmazonDynamoDBReadOnlyAccess",
        "Provides read only access to Amazon DynamoDB via the AWS Management Console.",
        r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem",
                "dynamodb:Describe*",
                "dynamodb:List*",
                "dynamodb:GetAbacStatus",
                "dynamodb:GetItem",
                "dynamodb:GetResourcePolicy",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:PartiQLSelect"
            ],
            "Resource": "*"
        }
    ]
}"#,
    ),
];

#[cfg(test)]
mod tests {
    use podid_iam::{Decision, PrincipalInfo, RequestContext, evaluate};

    use super::*;

    fn decide(c: &Catalog, name: &str, action: &str) -> Decision {
        let p = c.get(&format!("arn:aws:iam::aws:policy/{name}")).unwrap();
        let req = RequestContext::new(
            PrincipalInfo::user("arn:aws:iam::111122223333:user/u"),
            action,
        )
        .with_resource("arn:aws:s3:::bucket/key");
        evaluate(&[&p.policy], &req).decision
    }

    #[test]
    fn every_bundled_document_parses_as_an_identity_policy() {
        let c = Catalog::new();
        assert_eq!(c.all().len(), DOCUMENTS.len());
        for p in c.all() {
            p.policy.check_identity_policy().unwrap();
            assert!(
                p.policy_id.starts_with("ANPA") && p.policy_id.len() == 21,
                "{}",
                p.policy_id
            );
        }
        assert!(c.get("arn:aws:iam::aws:policy/NoSuchPolicy").is_none());
    }

    #[test]
    fn documents_grant_what_their_names_say() {
        let c = Catalog::new();
        assert_eq!(
            decide(&c, "AmazonS3ReadOnlyAccess", "s3:GetObject"),
            Decision::Allowed
        );
        assert_eq!(
            decide(&c, "AmazonS3ReadOnlyAccess", "s3:PutObject"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&c, "AmazonS3FullAccess", "s3:PutObject"),
            Decision::Allowed
        );
        assert_eq!(
            decide(&c, "AdministratorAccess", "iam:CreateRole"),
            Decision::Allowed
        );
        assert_eq!(
            decide(&c, "ReadOnlyAccess", "iam:CreateRole"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&c, "ReadOnlyAccess", "ec2:DescribeInstances"),
            Decision::Allowed
        );
        assert_eq!(
            decide(
                &c,
                "AmazonEKSWorkerNodePolicy",
                "eks-auth:AssumeRoleForPodIdentity"
            ),
            Decision::Allowed
        );
        assert_eq!(
            decide(&c, "AmazonDynamoDBReadOnlyAccess", "dynamodb:PutItem"),
            Decision::ImplicitDeny
        );
    }
}
