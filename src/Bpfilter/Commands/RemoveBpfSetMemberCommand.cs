using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Removes members from a deployed set: a map delete the running programs see at once, with no reload.</summary>
[Cmdlet(VerbsCommon.Remove, "BpfSetMember", SupportsShouldProcess = true)]
[OutputType(typeof(SetView))]
public sealed class RemoveBpfSetMemberCommand : SetMemberCommand
{
    protected override string Verb => "Remove";
    protected override SetView Apply(IReadOnlyList<string> members) => DeploymentSets.Remove(Name, SetName, members);
}
