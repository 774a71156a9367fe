variable "central_investigation_role_arn" {
  description = "ARN of keycheck's investigation role in the account it runs in: the investigation_role_arn output of the root module. Only this role may assume the investigation role created here."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.central_investigation_role_arn))
    error_message = "central_investigation_role_arn must be a role ARN such as arn:aws:iam::111122223333:role/keycheck-investigate."
  }
}

variable "central_containment_role_arn" {
  description = "ARN of keycheck's containment role in the account it runs in: the containment_role_arn output of the root module. When set, this module also creates a containment role that only that role may assume. Leave null to keep this account read only."
  type        = string
  default     = null

  validation {
    condition     = var.central_containment_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.central_containment_role_arn))
    error_message = "central_containment_role_arn must be a role ARN such as arn:aws:iam::111122223333:role/keycheck-contain, or null."
  }
}

variable "external_id" {
  description = "External ID keycheck passes when it assumes the roles here (the sts:ExternalId condition), written as external_id in keycheck.toml under [aws.accounts.\"<account ID>\"]. It is not a secret, but make it unique to this deployment."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@:/_-]{2,1224}$", var.external_id))
    error_message = "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/_-."
  }
}

variable "name_prefix" {
  description = "Prefix of the role names: <prefix>-investigate and <prefix>-contain. It must equal the root module's name_prefix, whose roles may assume only roles of these names."
  type        = string
  default     = "keycheck"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,50}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 50 characters of letters, digits and +=,.@_-."
  }
}

variable "max_session_duration" {
  description = "Maximum session length of the roles, in seconds. keycheck reaches them by role chaining, which AWS limits to one hour whatever this value is."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy to set as the permissions boundary of the roles, if your organisation requires one. Leave null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every role."
  type        = map(string)
  default     = {}
}
