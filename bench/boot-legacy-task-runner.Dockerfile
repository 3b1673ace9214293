# The task-runner image the older boot flow builds at boot (bench/boot-legacy-older.sh), shaped like rubybencher's
# task-runner Dockerfile: the Ruby base, git and nodejs/npm from the distribution, then the application.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y git nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /task-runner
COPY task-runner/ /task-runner/
CMD ["ruby", "/task-runner/task_runner.rb"]
