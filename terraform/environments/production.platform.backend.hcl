resource_group_name  = "rg-taskstream-tfstate"
storage_account_name = "sttaskstreamtfstate"
container_name       = "tfstate"
key                  = "production/platform.tfstate"
