# The roles keycheck assumes in one member account. Create one instance of this module per
# account, with a provider for that account. The investigation role trusts only the
# central investigation role and the containment role only the central containment role,
# both with the external ID, so a read-only keycheck cannot reach containment here.
# The permission policies are the same committed files as the root module's.

data "aws_caller_identity" "current" {}

locals {
  investigate_policy = file("${path.module}/../../policies/investigate.json")
  contain_policy     = file("${path.module}/../../policies/contain.json")

  create_containment_role = var.central_containment_role_arn != null
}

data "aws_iam_policy_document" "trust_investigate" {
  statement {
    sid     = "KeycheckInvestigation"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.central_investigation_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

data "aws_iam_policy_document" "trust_contain" {
  count = local.create_containment_role ? 1 : 0

  statement {
    sid     = "KeycheckContainment"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.central_containment_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "investigate" {
  name                 = "${var.name_prefix}-investigate"
  description          = "keycheck investigation (read only), assumed from the account keycheck runs in"
  assume_role_policy   = data.aws_iam_policy_document.trust_investigate.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy" "investigate" {
  # checkov 3.3 does not read a policy loaded with file(), but on the same JSON inlined it
  # reports CKV_AWS_355: the investigation's reads stay on "*" by design.
  #checkov:skip=CKV_AWS_355:the reads of an investigation need all resources because the users, log groups and findings they read are known only at run time
  name   = "keycheck-investigate"
  role   = aws_iam_role.investigate.id
  policy = local.investigate_policy
}

resource "aws_iam_role" "contain" {
  count = local.create_containment_role ? 1 : 0

  name                 = "${var.name_prefix}-contain"
  description          = "keycheck containment, assumed from the account keycheck runs in after an approval in chat"
  assume_role_policy   = data.aws_iam_policy_document.trust_contain[0].json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

# Containment reads the key's state before changing it, with calls from the investigation
# policy, so the containment role carries both policies.
resource "aws_iam_role_policy" "contain_investigate" {
  # checkov 3.3 does not read a policy loaded with file(), but on the same JSON inlined it
  # reports CKV_AWS_355: the investigation's reads stay on "*" by design.
  #checkov:skip=CKV_AWS_355:the reads of an investigation need all resources because the users, log groups and findings they read are known only at run time
  count = local.create_containment_role ? 1 : 0

  name   = "keycheck-investigate"
  role   = aws_iam_role.contain[0].id
  policy = local.investigate_policy
}

resource "aws_iam_role_policy" "contain" {
  count = local.create_containment_role ? 1 : 0

  name   = "keycheck-contain"
  role   = aws_iam_role.contain[0].id
  policy = local.contain_policy
}

# The containment policy may write inline policies on any role, so that it can revoke the
# sessions of a leaked key's role. This keeps it from writing to keycheck's own roles,
# which would let a compromised keycheck grant itself more.
resource "aws_iam_role_policy" "contain_protect_self" {
  count = local.create_containment_role ? 1 : 0

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
