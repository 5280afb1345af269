using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Lists the deployed programs: where each runs, the kernel's program id, its size, when it was loaded, and whether it is stale.</summary>
[Cmdlet(VerbsCommon.Get, "BpfProgram")]
[OutputType(typeof(DeployedProgram))]
public sealed class GetBpfProgramCommand : DeploymentReaderCommand
{
    protected override IEnumerable<object> Read(string deployment) => Deployments.Programs(deployment);
}
