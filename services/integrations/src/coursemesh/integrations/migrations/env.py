from coursemesh.chassis.migrations import run_env

run_env()
