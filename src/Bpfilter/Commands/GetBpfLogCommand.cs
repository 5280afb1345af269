using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Reads the packets that log verdicts wrote into deployments' ring buffers since the last read.</summary>
[Cmdlet(VerbsCommon.Get, "BpfLog")]
[OutputType(typeof(LogEntry))]
public sealed class GetBpfLogCommand : DeploymentReaderCommand
{
    protected override IEnumerable<object> Read(string deployment) => DeploymentLog.Read(deployment);
}
