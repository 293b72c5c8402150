"""Starting, watching and stopping the processes of Deployments and Flows."""
