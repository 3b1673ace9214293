# Values for this one build of task-runner on aws.
# Rendered by imgtool: not part of the inputs hash.
version      = "v20261129-171500-1a2b3c4d"
inputs_hash  = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
git_revision = "0123456789abcdef0123456789abcdef01234567"
run_id       = "none"
subnet_id    = ""
