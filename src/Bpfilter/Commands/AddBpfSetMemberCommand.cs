using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Adds members to a deployed set: a map update the running programs see at once, with no reload.</summary>
[Cmdlet(VerbsCommon.Add, "BpfSetMember", SupportsShouldProcess = true)]
[OutputType(typeof(SetView))]
public sealed class AddBpfSetMemberCommand : SetMemberCommand
{
    protected override string Verb => "Add";
    protected override SetView Apply(IReadOnlyList<string> members) => DeploymentSets.Add(Name, SetName, members);
}
