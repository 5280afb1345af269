using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Reads the per-rule packet and byte counters of deployments from their pinned maps.</summary>
[Cmdlet(VerbsCommon.Get, "BpfCounter")]
[OutputType(typeof(CounterRow))]
public sealed class GetBpfCounterCommand : DeploymentReaderCommand
{
    protected override IEnumerable<object> Read(string deployment) => Deployments.Counters(deployment);
}
