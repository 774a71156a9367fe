# The roles keycheck uses in the account it runs in: one to investigate (read only) and,
# unless create_containment_role is false, one to contain. Both trust keycheck's runtime
# identity: a Kubernetes service account through IRSA, or the IAM principals in
# trusted_principal_arns. The permission policies are the files `keycheck iam-policy`
# prints, committed under policies/; a Rust test fails when they drift from its output.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  investigate_policy = file("${path.module}/policies/investigate.json")
  contain_policy     = file("${path.module}/policies/contain.json")

  use_irsa = var.oidc_provider_arn != null

  # IAM names the condition keys of an OIDC provider after its issuer (the part of the
  # provider ARN after "oidc-provider/"), such as oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE.
  oidc_issuer = local.use_irsa ? split("oidc-provider/", var.oidc_provider_arn)[1] : ""

  cross_account_principals = [
    for arn in var.trusted_principal_arns : arn
    if split(":", arn)[4] != data.aws_caller_identity.current.account_id
  ]

  # The roles here may assume only the member-account roles of the same name prefix, in
  # any account. Each member role trusts only its central counterpart and requires the
  # external ID, so the member side decides which accounts keycheck reaches.
  member_investigation_roles = "arn:${data.aws_partition.current.partition}:iam::*:role/${var.name_prefix}-investigate"
  member_containment_roles   = "arn:${data.aws_partition.current.partition}:iam::*:role/${var.name_prefix}-contain"
}

data "aws_iam_policy_document" "trust" {
  dynamic "statement" {
    for_each = local.use_irsa ? [var.oidc_provider_arn] : []

    content {
      sid     = "KubernetesServiceAccount"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [statement.value]
      }

      condition {
        test     = "StringEquals"
        variable = "${local.oidc_issuer}:sub"
        values   = ["system:serviceaccount:${var.kubernetes_namespace}:${var.kubernetes_service_account}"]
      }

      condition {
        test     = "StringEquals"
        variable = "${local.oidc_issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.trusted_principal_arns) > 0 ? [var.trusted_principal_arns] : []

    content {
      sid     = "TrustedPrincipals"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = statement.value
      }

      dynamic "condition" {
        for_each = var.external_id == null ? [] : [var.external_id]

        content {
          test     = "StringEquals"
          variable = "sts:ExternalId"
          values   = [condition.value]
        }
      }
    }
  }
}

resource "aws_iam_role" "investigate" {
  name                 = "${var.name_prefix}-investigate"
  description          = "keycheck investigation (read only): reads IAM, CloudTrail, findings and workload settings about a leaked access key"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = local.use_irsa || length(var.trusted_principal_arns) > 0
      error_message = "Nothing may assume the keycheck roles: set oidc_provider_arn (EKS with IRSA) or trusted_principal_arns."
    }

    precondition {
      condition     = length(local.cross_account_principals) == 0 || var.external_id != null
      error_message = "trusted_principal_arns names principals of another account (${join(", ", local.cross_account_principals)}): set external_id."
    }
  }
}

resource "aws_iam_role_policy" "investigate" {
  # checkov 3.3 does not read a policy loaded with file(), but on the same JSON inlined it
  # reports CKV_AWS_355: the investigation's reads stay on "*" by design.
  #checkov:skip=CKV_AWS_355:the reads of an investigation need all resources because the users, log groups and findings they read are known only at run time
  name   = "keycheck-investigate"
  role   = aws_iam_role.investigate.id
  policy = local.investigate_policy
}

resource "aws_iam_role_policy" "investigate_assume_member_roles" {
  name = "keycheck-assume-member-roles"
  role = aws_iam_role.investigate.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "AssumeAccountRoles"
      Effect   = "Allow"
      Action   = "sts:AssumeRole"
      Resource = local.member_investigation_roles
    }]
  })
}

resource "aws_iam_role" "contain" {
  count = var.create_containment_role ? 1 : 0

  name                 = "${var.name_prefix}-contain"
  description          = "keycheck containment: deactivates and rotates a leaked access key, revokes its sessions and quarantines its owner, after an approval in chat"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

# Containment reads the key's state before changing it (is the key already inactive, does
# the user already have two keys), and those reads are in the investigation policy, so the
# containment role carries both policies.
resource "aws_iam_role_policy" "contain_investigate" {
  # checkov 3.3 does not read a policy loaded with file(), but on the same JSON inlined it
  # reports CKV_AWS_355: the investigation's reads stay on "*" by design.
  #checkov:skip=CKV_AWS_355:the reads of an investigation need all resources because the users, log groups and findings they read are known only at run time
  count = var.create_containment_role ? 1 : 0

  name   = "keycheck-investigate"
  role   = aws_iam_role.contain[0].id
  policy = local.investigate_policy
}

resource "aws_iam_role_policy" "contain" {
  count = var.create_containment_role ? 1 : 0

  name   = "keycheck-contain"
  role   = aws_iam_role.contain[0].id
  policy = local.contain_policy
}

# The containment policy may write inline policies on any role, so that it can revoke the
# sessions of a leaked key's role. This keeps it from writing to keycheck's own roles,
# which would let a compromised keycheck grant itself more.
resource "aws_iam_role_policy" "contain_protect_self" {
  count = var.create_containment_role ? 1 : 0

  name = "keycheck-protect-own-roles"
  role = aws_iam_role.contain[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "DenyChangesToKeycheckRoles"
      Effect   = "Deny"
      Action   = ["iam:PutRolePolicy", "iam:AttachRolePolicy"]
      Resource = [aws_iam_role.investigate.arn, aws_iam_role.contain[0].arn]
    }]
  })
}

resource "aws_iam_role_policy" "contain_assume_member_roles" {
  count = var.create_containment_role ? 1 : 0

  name = "keycheck-assume-member-roles"
  role = aws_iam_role.contain[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "AssumeAccountRoles"
      Effect   = "Allow"
      Action   = "sts:AssumeRole"
      Resource = local.member_containment_roles
    }]
  })
}
