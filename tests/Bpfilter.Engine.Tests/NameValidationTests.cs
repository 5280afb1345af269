using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Interface, namespace and cgroup names become C strings for if_nametoindex, paths under /run/netns and cgroup
/// directories (never shell words: nothing in the module starts a process). What Linux itself refuses, or what would
/// leave the directory a name belongs in, is refused where it enters the model.
/// </summary>
public sealed class NameValidationTests
{
    private static readonly IReadOnlyList<Rule> NoRules = [];

    private static void Refused(string field, Action action)
    {
        var error = Assert.Throws<RulesetValidationException>(action);
        Assert.Equal(("RulesetInvalid", FailureCategory.InvalidData, field), (error.ErrorId, error.Category, error.Field));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("eth0/../lo")]   // a path in /sys/class/net
    [InlineData("eth0:1")]       // an alias label, not an interface
    [InlineData("eth 0")]
    [InlineData("eth0\n")]
    [InlineData("eth0\0lo")]     // would cut the C string short
    [InlineData("sixteen-chars-xx")]
    public void Interface_names_Linux_refuses_are_refused(string name)
    {
        Refused("interface", () => new Chain("INPUT", Hook.Xdp, name, Verdict.Accept, NoRules));
        Refused("interface", () => new InterfaceMatch(name));
    }

    [Theory]
    [InlineData("eth0")]
    [InlineData("fifteen-chars-x")]
    [InlineData("br-1a2b.100")]
    [InlineData("a;b$(x)`y'\"|&")] // Linux allows these in names; they only ever reach if_nametoindex
    public void Interface_names_Linux_allows_are_allowed(string name)
    {
        Assert.Equal(name, new Chain("INPUT", Hook.Xdp, name, Verdict.Accept, NoRules).Interface);
        Assert.Equal(name, new InterfaceMatch(name).Name);
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("a/b")]               // a name is a file of /run/netns, not a path below it
    [InlineData("blue; reboot")]
    [InlineData("$(reboot)")]
    [InlineData("/run/netns/../../etc/shadow")]
    [InlineData("/run/netns/x/..")]
    [InlineData("/run/netns/x\0y")]
    public void Namespaces_that_are_not_a_name_or_a_plain_absolute_path_are_refused(string name)
    {
        Refused("namespace", () => new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, NoRules, networkNamespace: name));
        // Publish-BpfProgram -NetworkNamespace is checked before anything else, privileges included.
        var ruleset = new Ruleset("bpft-names", [new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, NoRules)]);
        Refused("namespace", () => Publisher.Publish(ruleset, new PublishOptions(name)));
    }

    [Theory]
    [InlineData("blue")]
    [InlineData("bpft-a1.b_2")]
    [InlineData("/run/netns/blue")]
    [InlineData("/proc/1/ns/net")]
    public void Namespace_names_and_absolute_paths_are_allowed(string name) =>
        Assert.Equal(name, new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, NoRules, networkNamespace: name).NetworkNamespace);

    [Theory]
    [InlineData("")]
    [InlineData("../etc")]
    [InlineData("system.slice/../../etc")]
    [InlineData("/sys/fs/cgroup/./x")]
    [InlineData("a\0b")]
    public void Cgroup_paths_with_dot_segments_or_nul_are_refused(string path) =>
        Refused("cgroup", () => new Chain("INPUT", Hook.CgroupIngress, null, Verdict.Accept, NoRules, cgroup: path));
}
