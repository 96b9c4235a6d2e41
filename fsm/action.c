/* The action table and the helpers every action uses: result building and
 * parameter readers.
 *
 * Adding an action is adding a row: its kind and flags, a check of the
 * request parameters (run on the leader before proposing), an optional
 * leader-side stamp (time-free, random or secret material the log must
 * carry), the apply function (a pure function of state and envelope) or the
 * query function of a read. Apply functions re-validate their arguments
 * (the log is not trusted) and must decide every rejection before their
 * first write: a rejection after a write would leave half an effect, so the
 * apply driver turns it into a local failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

static const struct fsm_action actions[] = {
    /* identity */
    {"CreateUser", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__user_create_check,
     fsm__user_create_stamp, fsm__user_create_apply, NULL},
    {"CreateAPIKey", FSM_ACT_WRITE, 0, fsm__key_create_check,
     fsm__key_create_stamp, fsm__key_create_apply, NULL},
    {"DeleteAPIKey", FSM_ACT_WRITE, 0, fsm__key_delete_check, NULL,
     fsm__key_delete_apply, NULL},
    {"LoginByPassword", FSM_ACT_WRITE, FSM_ACT_F_ANON, fsm__login_check,
     fsm__login_stamp, fsm__login_apply, NULL},
    {"ModifyNameAndRemark", FSM_ACT_WRITE, 0, fsm__user_modify_check, NULL,
     fsm__user_modify_apply, NULL},
    {"DescribeUser", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__user_describe},
    {"FreezeUser", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__user_freeze_check, NULL,
     fsm__user_freeze_apply, NULL},
    {"UnfreezeUser", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__user_freeze_check,
     NULL, fsm__user_unfreeze_apply, NULL},
    {"CreateSubAccount", FSM_ACT_WRITE, 0, fsm__sub_create_check,
     fsm__user_create_stamp, fsm__sub_create_apply, NULL},
    {"DescribeSubAccount", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__sub_describe},
    {"DeleteSubAccount", FSM_ACT_WRITE, 0, fsm__sub_delete_check, NULL,
     fsm__sub_delete_apply, NULL},
    {"CreateRole", FSM_ACT_WRITE, 0, fsm__role_create_check, NULL,
     fsm__role_create_apply, NULL},
    {"DescribeRole", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__role_describe},
    {"DeleteRole", FSM_ACT_WRITE, 0, fsm__role_delete_check, NULL,
     fsm__role_delete_apply, NULL},
    {"AttachRole", FSM_ACT_WRITE, 0, fsm__role_attach_check, NULL,
     fsm__role_attach_apply, NULL},
    {"DetachRole", FSM_ACT_WRITE, 0, fsm__role_attach_check, NULL,
     fsm__role_detach_apply, NULL},
    /* quotas and prices */
    {"ModifyQuota", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__quota_modify_check,
     NULL, fsm__quota_modify_apply, NULL},
    {"DescribeQuota", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__quota_describe},
    {"ModifyPrice", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__price_modify_check,
     NULL, fsm__price_modify_apply, NULL},
    {"DescribePrice", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__price_describe},
    {"GetVMInstancePrice", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__price_vm},
    {"GetDiskPrice", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__price_disk},
    {"GetEIPPrice", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__price_eip},
    /* billing */
    {"ModifyBillingConfig", FSM_ACT_WRITE, FSM_ACT_F_ADMIN,
     fsm__bill_cfg_modify_check, NULL, fsm__bill_cfg_modify_apply, NULL},
    {"DescribeBillingConfig", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__bill_cfg_describe},
    {"Recharge", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__recharge_check, NULL,
     fsm__recharge_apply, NULL},
    {"DescribeBalance", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__balance_describe},
    {"DescribeOrder", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__order_describe},
    {"DescribeTransaction", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__txn_describe},
    {"RenewResource", FSM_ACT_WRITE, 0, fsm__renew_check, NULL,
     fsm__renew_apply, NULL},
    /* storage */
    {"CreateDisk", FSM_ACT_WRITE, 0, fsm__disk_create_check, NULL,
     fsm__disk_create_apply, NULL},
    {"DescribeDisk", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__disk_describe},
    {"ResizeDisk", FSM_ACT_WRITE, 0, fsm__disk_resize_check, NULL,
     fsm__disk_resize_apply, NULL},
    {"DeleteDisk", FSM_ACT_WRITE, 0, fsm__disk_delete_check, NULL,
     fsm__disk_delete_apply, NULL},
    {"CreateStoragePool", FSM_ACT_WRITE, FSM_ACT_F_ADMIN,
     fsm__pool_create_check, NULL, fsm__pool_create_apply, NULL},
    {"DescribeStoragePool", FSM_ACT_READ, FSM_ACT_F_ADMIN, NULL, NULL, NULL,
     fsm__pool_describe},
    {"AttachDisk", FSM_ACT_WRITE, 0, fsm__disk_attach_check, NULL,
     fsm__disk_attach_apply, NULL},
    {"DetachDisk", FSM_ACT_WRITE, 0, fsm__disk_attach_check, NULL,
     fsm__disk_detach_apply, NULL},
    {"CloneDisk", FSM_ACT_WRITE, 0, fsm__disk_clone_check, NULL,
     fsm__disk_clone_apply, NULL},
    {"CreateSnapshot", FSM_ACT_WRITE, 0, fsm__snap_create_check, NULL,
     fsm__snap_create_apply, NULL},
    {"DescribeSnapshot", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__snap_describe},
    {"RollbackSnapshot", FSM_ACT_WRITE, 0, fsm__snap_op_check, NULL,
     fsm__snap_rollback_apply, NULL},
    {"DeleteSnapshot", FSM_ACT_WRITE, 0, fsm__snap_op_check, NULL,
     fsm__snap_delete_apply, NULL},
    {"CreateCustomImage", FSM_ACT_WRITE, 0, fsm__image_custom_check, NULL,
     fsm__image_custom_apply, NULL},
    /* infrastructure (admin) and agents */
    {"CreateZone", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__zone_create_check, NULL,
     fsm__zone_create_apply, NULL},
    {"DescribeZone", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__zone_describe},
    {"RegisterHost", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__host_register_check,
     fsm__key_stamp, fsm__host_register_apply, NULL},
    {"HostHeartbeat", FSM_ACT_WRITE, FSM_ACT_F_AGENT, NULL, NULL,
     fsm__host_heartbeat_apply, NULL},
    {"DescribeHost", FSM_ACT_READ, FSM_ACT_F_ADMIN, NULL, NULL, NULL,
     fsm__host_describe},
    {"DisableHost", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__host_disable_check,
     NULL, fsm__host_disable_apply, NULL},
    {"EnableHost", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__host_disable_check,
     NULL, fsm__host_enable_apply, NULL},
    {"CreateImage", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__image_create_check,
     NULL, fsm__image_create_apply, NULL},
    {"DescribeImage", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__image_describe},
    {"DeleteImage", FSM_ACT_WRITE, 0, fsm__image_delete_check, NULL,
     fsm__image_delete_apply, NULL},
    {"ReportState", FSM_ACT_WRITE, FSM_ACT_F_AGENT, fsm__report_state_check,
     NULL, fsm__report_state_apply, NULL},
    /* compute */
    {"CreateVMInstance", FSM_ACT_WRITE, 0, fsm__vm_create_check,
     fsm__vm_create_stamp, fsm__vm_create_apply, NULL},
    {"DescribeVMInstance", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__vm_describe},
    {"StartVMInstance", FSM_ACT_WRITE, 0, fsm__vm_op_check, NULL,
     fsm__vm_start_apply, NULL},
    {"StopVMInstance", FSM_ACT_WRITE, 0, fsm__vm_op_check, NULL,
     fsm__vm_stop_apply, NULL},
    {"RestartVMInstance", FSM_ACT_WRITE, 0, fsm__vm_op_check, NULL,
     fsm__vm_restart_apply, NULL},
    {"DeleteVMInstance", FSM_ACT_WRITE, 0, fsm__vm_op_check, NULL,
     fsm__vm_delete_apply, NULL},
    {"ResizeVMConfig", FSM_ACT_WRITE, 0, fsm__vm_resize_check, NULL,
     fsm__vm_resize_apply, NULL},
    {"CreateAntiAffinityGroup", FSM_ACT_WRITE, 0, fsm__aag_create_check, NULL,
     fsm__aag_create_apply, NULL},
    {"DescribeAntiAffinityGroup", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__aag_describe},
    {"DescribeJob", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__job_describe},
    /* compute: operations beyond the lifecycle (tbl_vmops.c) */
    {"ReinstallVMInstance", FSM_ACT_WRITE, 0, fsm__vm_reinstall_check,
     fsm__pw_seal_stamp_vm, fsm__vm_reinstall_apply, NULL},
    {"ResetVMInstancePassword", FSM_ACT_WRITE, 0, fsm__vm_pwreset_check,
     fsm__pw_seal_stamp_vm, fsm__vm_pwreset_apply, NULL},
    {"MigrateVMInstance", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, fsm__vm_migrate_check,
     fsm__vm_migrate_stamp, fsm__vm_migrate_apply, NULL},
    /* network */
    {"CreateVPC", FSM_ACT_WRITE, 0, fsm__vpc_create_check, NULL,
     fsm__vpc_create_apply, NULL},
    {"DescribeVPC", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__vpc_describe},
    {"DeleteVPC", FSM_ACT_WRITE, 0, fsm__vpc_delete_check, NULL,
     fsm__vpc_delete_apply, NULL},
    {"CreateSubnet", FSM_ACT_WRITE, 0, fsm__subnet_create_check, NULL,
     fsm__subnet_create_apply, NULL},
    {"DescribeSubnet", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__subnet_describe},
    {"DeleteSubnet", FSM_ACT_WRITE, 0, fsm__subnet_delete_check, NULL,
     fsm__subnet_delete_apply, NULL},
    {"CreateNIC", FSM_ACT_WRITE, 0, fsm__nic_create_check, NULL,
     fsm__nic_create_apply, NULL},
    {"DescribeNIC", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__nic_describe},
    {"DeleteNIC", FSM_ACT_WRITE, 0, fsm__nic_delete_check, NULL,
     fsm__nic_delete_apply, NULL},
    {"CreateSecurityGroup", FSM_ACT_WRITE, 0, fsm__sg_create_check, NULL,
     fsm__sg_create_apply, NULL},
    {"DescribeSecurityGroup", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__sg_describe},
    {"DeleteSecurityGroup", FSM_ACT_WRITE, 0, fsm__sg_delete_check, NULL,
     fsm__sg_delete_apply, NULL},
    {"CreateSecurityGroupRule", FSM_ACT_WRITE, 0, fsm__sg_rule_create_check,
     NULL, fsm__sg_rule_create_apply, NULL},
    {"DeleteSecurityGroupRule", FSM_ACT_WRITE, 0, fsm__sg_rule_delete_check,
     NULL, fsm__sg_rule_delete_apply, NULL},
    {"BindSecurityGroup", FSM_ACT_WRITE, 0, fsm__sg_bind_check, NULL,
     fsm__sg_bind_apply, NULL},
    {"UnBindSecurityGroup", FSM_ACT_WRITE, 0, fsm__sg_bind_check, NULL,
     fsm__sg_unbind_apply, NULL},
    {"CreateEIPPool", FSM_ACT_WRITE, FSM_ACT_F_ADMIN,
     fsm__eip_pool_create_check, NULL, fsm__eip_pool_create_apply, NULL},
    {"DescribeEIPPool", FSM_ACT_READ, FSM_ACT_F_ADMIN, NULL, NULL, NULL,
     fsm__eip_pool_describe},
    {"AllocateEIP", FSM_ACT_WRITE, 0, fsm__eip_alloc_check, NULL,
     fsm__eip_alloc_apply, NULL},
    {"DescribeEIP", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__eip_describe},
    {"BindEIP", FSM_ACT_WRITE, 0, fsm__eip_bind_check, NULL,
     fsm__eip_bind_apply, NULL},
    {"UnBindEIP", FSM_ACT_WRITE, 0, fsm__eip_unbind_check, NULL,
     fsm__eip_unbind_apply, NULL},
    {"ModifyEIPBandwidth", FSM_ACT_WRITE, 0, fsm__eip_bw_check, NULL,
     fsm__eip_bw_apply, NULL},
    {"ReleaseEIP", FSM_ACT_WRITE, 0, fsm__eip_release_check, NULL,
     fsm__eip_release_apply, NULL},
    /* automation: timers, metrics, alarms, autoscaling (auto.c,
     * tbl_timer.c, tbl_alarm.c, tbl_scale.c) */
    {"CreateTimer", FSM_ACT_WRITE, 0, fsm__timer_create_check, NULL,
     fsm__timer_create_apply, NULL},
    {"DescribeTimer", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__timer_describe},
    {"DeleteTimer", FSM_ACT_WRITE, 0, fsm__timer_delete_check, NULL,
     fsm__timer_delete_apply, NULL},
    {"ReportMetric", FSM_ACT_WRITE, FSM_ACT_F_AGENT, fsm__metric_report_check,
     NULL, fsm__metric_report_apply, NULL},
    {"DescribeMetric", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__metric_describe},
    {"CreateAlarmTemplate", FSM_ACT_WRITE, 0, fsm__alarmtpl_create_check, NULL,
     fsm__alarmtpl_create_apply, NULL},
    {"DescribeAlarmTemplate", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__alarmtpl_describe},
    {"DeleteAlarmTemplate", FSM_ACT_WRITE, 0, fsm__alarmtpl_delete_check, NULL,
     fsm__alarmtpl_delete_apply, NULL},
    {"BindAlarmTemplate", FSM_ACT_WRITE, 0, fsm__alarm_bind_check, NULL,
     fsm__alarm_bind_apply, NULL},
    {"UnBindAlarmTemplate", FSM_ACT_WRITE, 0, fsm__alarm_bind_check, NULL,
     fsm__alarm_unbind_apply, NULL},
    {"DescribeAlarm", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__alarm_describe},
    {"CreateScalingGroup", FSM_ACT_WRITE, 0, fsm__asg_create_check, NULL,
     fsm__asg_create_apply, NULL},
    {"DescribeScalingGroup", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__asg_describe},
    {"DeleteScalingGroup", FSM_ACT_WRITE, 0, fsm__asg_delete_check, NULL,
     fsm__asg_delete_apply, NULL},
    {"CreateScalingPolicy", FSM_ACT_WRITE, 0, fsm__asp_create_check, NULL,
     fsm__asp_create_apply, NULL},
    {"_TimerFire", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__timer_fire_apply, NULL},
    {"_ScalePolicy", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__scale_policy_apply, NULL},
    {"_ScaleReconcile", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__scale_reconcile_apply, NULL},
    /* NIC attachments and network gateways (gw.c nic.c natgw.c lb.c
     * cert.c vpn.c; the creates' placement stamp: gwhost.c) */
    {"AttachNIC", FSM_ACT_WRITE, 0, fsm__nic_attach_check, NULL,
     fsm__nic_attach_apply, NULL},
    {"DetachNIC", FSM_ACT_WRITE, 0, fsm__nic_detach_check, NULL,
     fsm__nic_detach_apply, NULL},
    {"CreateNATGW", FSM_ACT_WRITE, 0, fsm__natgw_create_check,
     fsm__gw_place_stamp, fsm__natgw_create_apply, NULL},
    {"DescribeNATGW", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__natgw_describe},
    {"DeleteNATGW", FSM_ACT_WRITE, 0, fsm__natgw_id_check, NULL,
     fsm__natgw_delete_apply, NULL},
    {"CreateNATGWRule", FSM_ACT_WRITE, 0, fsm__natrule_create_check, NULL,
     fsm__natrule_create_apply, NULL},
    {"DeleteNATGWRule", FSM_ACT_WRITE, 0, fsm__natrule_delete_check, NULL,
     fsm__natrule_delete_apply, NULL},
    {"CreateCertificate", FSM_ACT_WRITE, 0, fsm__cert_create_check, NULL,
     fsm__cert_create_apply, NULL},
    {"DescribeCertificate", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__cert_describe},
    {"DeleteCertificate", FSM_ACT_WRITE, 0, fsm__cert_delete_check, NULL,
     fsm__cert_delete_apply, NULL},
    {"CreateLB", FSM_ACT_WRITE, 0, fsm__lb_create_check, fsm__gw_place_stamp,
     fsm__lb_create_apply, NULL},
    {"DescribeLB", FSM_ACT_READ, 0, NULL, NULL, NULL, fsm__lb_describe},
    {"DeleteLB", FSM_ACT_WRITE, 0, fsm__lb_delete_check, NULL,
     fsm__lb_delete_apply, NULL},
    {"CreateVServer", FSM_ACT_WRITE, 0, fsm__vs_create_check, NULL,
     fsm__vs_create_apply, NULL},
    {"DeleteVServer", FSM_ACT_WRITE, 0, fsm__vs_delete_check, NULL,
     fsm__vs_delete_apply, NULL},
    {"CreateRS", FSM_ACT_WRITE, 0, fsm__rs_create_check, NULL,
     fsm__rs_create_apply, NULL},
    {"DeleteRS", FSM_ACT_WRITE, 0, fsm__rs_delete_check, NULL,
     fsm__rs_delete_apply, NULL},
    {"CreateVPNGateway", FSM_ACT_WRITE, 0, fsm__vpngw_create_check,
     fsm__gw_place_stamp, fsm__vpngw_create_apply, NULL},
    {"DescribeVPNGateway", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__vpngw_describe},
    {"DeleteVPNGateway", FSM_ACT_WRITE, 0, fsm__vpngw_delete_check, NULL,
     fsm__vpngw_delete_apply, NULL},
    {"CreateRemoteVPNGateway", FSM_ACT_WRITE, 0, fsm__remote_create_check, NULL,
     fsm__remote_create_apply, NULL},
    {"DescribeRemoteVPNGateway", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__remote_describe},
    {"DeleteRemoteVPNGateway", FSM_ACT_WRITE, 0, fsm__remote_delete_check, NULL,
     fsm__remote_delete_apply, NULL},
    {"CreateVPNConnection", FSM_ACT_WRITE, 0, fsm__conn_create_check, NULL,
     fsm__conn_create_apply, NULL},
    {"DescribeVPNConnection", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__conn_describe},
    {"DeleteVPNConnection", FSM_ACT_WRITE, 0, fsm__conn_delete_check, NULL,
     fsm__conn_delete_apply, NULL},
    /* issue 5 gaps: the NAT whitelist (natwl.c), scaling policies and
     * groups (tbl_scale.c), timers (tbl_timer.c) */
    {"AddWhiteListResource", FSM_ACT_WRITE, 0, fsm__natwl_check, NULL,
     fsm__natwl_add_apply, NULL},
    {"DeleteWhiteListResource", FSM_ACT_WRITE, 0, fsm__natwl_check, NULL,
     fsm__natwl_del_apply, NULL},
    {"DescribeWhiteListResource", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__natwl_describe},
    {"EnableWhiteList", FSM_ACT_WRITE, 0, fsm__natwl_mode_check, NULL,
     fsm__natwl_mode_apply, NULL},
    {"DeleteScalingPolicy", FSM_ACT_WRITE, 0, fsm__asp_delete_check, NULL,
     fsm__asp_delete_apply, NULL},
    {"DescribeScalingPolicy", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__asp_describe},
    {"ModifyScalingPolicy", FSM_ACT_WRITE, 0, fsm__asp_modify_check, NULL,
     fsm__asp_modify_apply, NULL},
    {"ModifyScalingGroup", FSM_ACT_WRITE, 0, fsm__asg_modify_check, NULL,
     fsm__asg_modify_apply, NULL},
    {"ModifyTimer", FSM_ACT_WRITE, 0, fsm__timer_modify_check, NULL,
     fsm__timer_modify_apply, NULL},
    /* recycle bin */
    {"DescribeRecycledResource", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__recycled_describe},
    {"RecoverResource", FSM_ACT_WRITE, 0, fsm__recover_check, NULL,
     fsm__recover_apply, NULL},
    {"PurgeResource", FSM_ACT_WRITE, 0, fsm__recover_check, NULL,
     fsm__purge_apply, NULL},
    /* operations */
    {"DescribeOperationLog", FSM_ACT_READ, 0, NULL, NULL, NULL,
     fsm__oplog_describe},
    /* cluster (served by cluster/) */
    {"DescribeCluster", FSM_ACT_CLUSTER, FSM_ACT_F_ANON, NULL, NULL, NULL,
     NULL},
    {"TransferLeader", FSM_ACT_CLUSTER, FSM_ACT_F_ADMIN, NULL, NULL, NULL,
     NULL},
    {"AddNode", FSM_ACT_CLUSTER, FSM_ACT_F_ADMIN, NULL, NULL, NULL, NULL},
    {"RemoveNode", FSM_ACT_CLUSTER, FSM_ACT_F_ADMIN, NULL, NULL, NULL, NULL},
    {"Watch", FSM_ACT_CLUSTER, 0, NULL, NULL, NULL, NULL},
    /* Served by the API server on top of DescribeJob / fsm_host_spec. */
    {"WaitJob", FSM_ACT_CLUSTER, 0, NULL, NULL, NULL, NULL},
    {"WatchCommands", FSM_ACT_CLUSTER, FSM_ACT_F_AGENT, NULL, NULL, NULL, NULL},
    /* internal: only built by fsm_cmd_bootstrap / fsm_cmd_node */
    {"_Bootstrap", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__bootstrap_apply, NULL},
    {"_Node", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL, fsm__node_apply,
     NULL},
    /* internal: proposed by fsm_leader_tick (tick.c) */
    {"_BillCharge", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__bill_charge_apply, NULL},
    {"_BillStop", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__bill_stop_apply, NULL},
    {"_Recycle", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__bill_recycle_apply, NULL},
    {"_Purge", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__bill_purge_apply, NULL},
    /* internal, issue 4 gaps: billing detaches an attached data disk
     * before its recycle (tbl_bill.c, tbl_storage.c) */
    {"_BillDetach", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__bill_detach_apply, NULL},
    {"_HostExpire", FSM_ACT_WRITE, FSM_ACT_F_ADMIN, NULL, NULL,
     fsm__host_expire_apply, NULL},
};

#define N_ACTIONS (sizeof actions / sizeof actions[0])

const struct fsm_action *fsm__action_find(const char *name)
{
    for (size_t i = 0; i < N_ACTIONS; i++) {
        if (strcmp(actions[i].name, name) == 0) {
            return &actions[i];
        }
    }
    return NULL;
}

enum fsm_action_kind fsm_action_kind(const char *action, unsigned *flags)
{
    const struct fsm_action *a;

    if (flags != NULL) {
        *flags = 0;
    }
    if (action == NULL || action[0] == '_') {
        return FSM_ACT_UNKNOWN;
    }
    a = fsm__action_find(action);
    if (a == NULL) {
        return FSM_ACT_UNKNOWN;
    }
    if (flags != NULL) {
        *flags = a->flags;
    }
    return a->kind;
}

const char *const *fsm_action_names(void)
{
    /* Built from the table at first call; the loop thread is the only
     * caller, and the table is constant, so the result never changes. */
    static const char *names[N_ACTIONS + 1];

    if (names[0] == NULL) {
        size_t n = 0;
        for (size_t i = 0; i < N_ACTIONS; i++) {
            if (actions[i].name[0] != '_') {
                names[n++] = actions[i].name;
            }
        }
        names[n] = NULL;
    }
    return names;
}

/* ---- context and results ---- */

void fsm__ctx_init(struct fsm_ctx *c,
                   struct fsm *f,
                   MDB_txn *txn,
                   const char *type,
                   const struct fsm_actor *actor,
                   const msgpack_object *args)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->txn = txn;
    c->type = type;
    c->actor = actor;
    c->args = args;
    yh_buf_init(&c->fields_buf);
    fsm__out_init(&c->fields, &c->fields_buf);
    yh_buf_init(&c->stamp_buf);
    fsm__out_init(&c->stamp_out, &c->stamp_buf);
    yh_buf_init(&c->concerns_buf);
    fsm__out_init(&c->concerns, &c->concerns_buf);
    yh_buf_init(&c->purged_buf);
    fsm__out_init(&c->purged, &c->purged_buf);
}

void fsm__ctx_release(struct fsm_ctx *c)
{
    yh_buf_release(&c->fields_buf);
    yh_buf_release(&c->stamp_buf);
    yh_buf_release(&c->concerns_buf);
    yh_buf_release(&c->purged_buf);
}

int fsm__purged_add(struct fsm_ctx *c, const char *id)
{
    yh_mp_pack_str(&c->purged.pk, id);
    c->n_purged++;
    return c->purged.oom ? YH_ENOMEM : 0;
}

int fsm__reject(struct fsm_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;

    c->code = code;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return code;
}

msgpack_packer *fsm__field(struct fsm_ctx *c, const char *key)
{
    yh_mp_pack_str(&c->fields.pk, key);
    c->n_fields++;
    return &c->fields.pk;
}

msgpack_packer *fsm__stamp_field(struct fsm_ctx *c, const char *key)
{
    yh_mp_pack_str(&c->stamp_out.pk, key);
    c->n_stamp++;
    return &c->stamp_out.pk;
}

static void pack_action(msgpack_packer *pk, const char *type)
{
    size_t n = strlen(type);

    msgpack_pack_str(pk, n + 8);
    msgpack_pack_str_body(pk, type, n);
    msgpack_pack_str_body(pk, "Response", 8);
}

int fsm__result_pack(const struct fsm_ctx *c, struct yh_buf *out)
{
    struct fsm_out o;
    int ok = c->code == 0;

    if (c->fields.oom) {
        return YH_ENOMEM;
    }
    fsm__out_init(&o, out);
    msgpack_pack_map(&o.pk, 3 + (ok ? c->n_fields : 0));
    yh_mp_pack_kv_int(&o.pk, "RetCode", c->code);
    yh_mp_pack_str(&o.pk, "Action");
    pack_action(&o.pk, c->type);
    yh_mp_pack_kv_str(&o.pk, "Message", c->msg);
    if (ok && c->fields_buf.len > 0 &&
        yh_buf_append(out, c->fields_buf.data, c->fields_buf.len) != 0) {
        return YH_ENOMEM;
    }
    return o.oom ? YH_ENOMEM : 0;
}

int fsm__result_error(const char *type,
                      int code,
                      const char *msg,
                      struct yh_buf *out)
{
    struct fsm_out o;

    fsm__out_init(&o, out);
    msgpack_pack_map(&o.pk, 3);
    yh_mp_pack_kv_int(&o.pk, "RetCode", code);
    yh_mp_pack_str(&o.pk, "Action");
    pack_action(&o.pk, type);
    yh_mp_pack_kv_str(&o.pk, "Message", msg);
    return o.oom ? YH_ENOMEM : 0;
}

/* ---- parameters ---- */

int fsm__arg_str(struct fsm_ctx *c,
                 const char *key,
                 int required,
                 size_t max,
                 char *out,
                 int *present)
{
    char scratch[24];
    const char *p;
    size_t len;
    int rc;

    if (present != NULL) {
        *present = 0;
    }
    out[0] = '\0';
    rc = yh_mp_str(c->args, key, &p, &len, scratch);
    if (rc == YH_EMISSING) {
        if (required) {
            return fsm__reject(c, YH_EMISSING, "missing parameter '%s'", key);
        }
        return 0;
    }
    if (rc != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': not a "
                           "string",
                           key);
    }
    if (len > max) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': longer than %zu bytes", key,
                           max);
    }
    if (yh_has_ctl(p, len)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': control character", key);
    }
    if (required && len == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter '%s'", key);
    }
    memcpy(out, p, len);
    out[len] = '\0';
    if (present != NULL) {
        *present = 1;
    }
    return 0;
}

int fsm__arg_int(struct fsm_ctx *c,
                 const char *key,
                 int required,
                 int64_t min,
                 int64_t max,
                 int64_t *out,
                 int *present)
{
    int rc = yh_mp_int(c->args, key, out);

    if (present != NULL) {
        *present = 0;
    }
    if (rc == YH_EMISSING) {
        if (required) {
            return fsm__reject(c, YH_EMISSING, "missing parameter '%s'", key);
        }
        return 0;
    }
    if (rc != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': not an integer", key);
    }
    if (*out < min || *out > max) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': must be %lld..%lld", key,
                           (long long)min, (long long)max);
    }
    if (present != NULL) {
        *present = 1;
    }
    return 0;
}

int fsm__arg_int_or(struct fsm_ctx *c,
                    const char *key,
                    int64_t min,
                    int64_t max,
                    int64_t def,
                    int64_t *out)
{
    int given;
    int rc = fsm__arg_int(c, key, 0, min, max, out, &given);

    if (rc == 0 && !given) {
        *out = def;
    }
    return rc;
}

int fsm__arg_str_or(struct fsm_ctx *c,
                    const char *key,
                    size_t max,
                    const char *def,
                    char *out)
{
    int given;
    int rc = fsm__arg_str(c, key, 0, max, out, &given);

    if (rc == 0 && !given) {
        snprintf(out, max + 1, "%s", def);
    }
    return rc;
}

/* Append one entry (a str or bin of 1..size-1 bytes, no NUL) to @out, an
 * array of @max entries of @size bytes. */
static int list_add(struct fsm_ctx *c,
                    const char *key,
                    const msgpack_object *v,
                    unsigned max,
                    size_t size,
                    char *out,
                    unsigned *n)
{
    const char *p;
    size_t len;

    if (v->type == MSGPACK_OBJECT_STR) {
        p = v->via.str.ptr;
        len = v->via.str.size;
    } else if (v->type == MSGPACK_OBJECT_BIN) {
        p = v->via.bin.ptr;
        len = v->via.bin.size;
    } else {
        return fsm__reject(c, YH_EINVAL, "invalid parameter '%s': not a string",
                           key);
    }
    if (*n >= max) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': more than %u entries", key,
                           max);
    }
    if (len == 0 || len >= size || memchr(p, '\0', len) != NULL) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': entries of 1..%zu bytes",
                           key, size - 1);
    }
    memcpy(out + *n * size, p, len);
    out[*n * size + len] = '\0';
    (*n)++;
    return 0;
}

/* A list parameter, as an array under @key (a single value is a list of
 * one) and/or as the UCloud keys "Key.0", "Key.1", ... in the order sent. */
int fsm__arg_list_long(struct fsm_ctx *c,
                       const char *key,
                       unsigned max,
                       size_t size,
                       char *out,
                       unsigned *n)
{
    const msgpack_object *m = c->args;
    const msgpack_object *v = yh_mp_get(m, key);
    size_t klen = strlen(key);

    *n = 0;
    if (v != NULL && v->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            TRY(list_add(c, key, &v->via.array.ptr[i], max, size, out, n));
        }
    } else if (v != NULL && v->type != MSGPACK_OBJECT_NIL) {
        TRY(list_add(c, key, v, max, size, out, n));
    }
    if (m == NULL || m->type != MSGPACK_OBJECT_MAP) {
        return 0;
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const char *p;
        size_t len;
        if (k->type != MSGPACK_OBJECT_STR) {
            continue;
        }
        p = k->via.str.ptr;
        len = k->via.str.size;
        if (len <= klen + 1 || memcmp(p, key, klen) != 0 || p[klen] != '.') {
            continue;
        }
        for (size_t j = klen + 1; j < len; j++) {
            if (p[j] < '0' || p[j] > '9') {
                return fsm__reject(c, YH_EINVAL, "invalid parameter '%.*s'",
                                   (int)(len > 64 ? 64 : len), p);
            }
        }
        if (m->via.map.ptr[i].val.type == MSGPACK_OBJECT_NIL) {
            continue;
        }
        TRY(list_add(c, key, &m->via.map.ptr[i].val, max, size, out, n));
    }
    return 0;
}

int fsm__arg_list(struct fsm_ctx *c,
                  const char *key,
                  unsigned max,
                  char (*out)[FSM_ID_SIZE],
                  unsigned *n)
{
    return fsm__arg_list_long(c, key, max, FSM_ID_SIZE, (char *)out, n);
}

int fsm__arg_page(struct fsm_ctx *c, uint64_t *offset, uint64_t *limit)
{
    int64_t v;
    int present;
    int rc;

    rc = fsm__arg_int(c, "Offset", 0, 0, INT64_MAX, &v, &present);
    if (rc != 0) {
        return rc;
    }
    *offset = present ? (uint64_t)v : 0;
    rc = fsm__arg_int(c, "Limit", 0, 0, 100, &v, &present);
    if (rc != 0) {
        return rc;
    }
    *limit = present ? (uint64_t)v : 20;
    return 0;
}

int fsm__stamp_str(struct fsm_ctx *c, const char *key, size_t max, char *out)
{
    const msgpack_object *v = yh_mp_get(c->stamp, key);

    if (v == NULL || v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
        v->via.str.size > max ||
        memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL) {
        return fsm__reject(c, YH_EPROTO, "bad command: stamp '%s'", key);
    }
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 0;
}

int fsm__stamp_bin(struct fsm_ctx *c,
                   const char *key,
                   size_t min,
                   size_t max,
                   uint8_t *out,
                   size_t *len)
{
    const msgpack_object *v = yh_mp_get(c->stamp, key);

    if (v == NULL || v->type != MSGPACK_OBJECT_BIN || v->via.bin.size < min ||
        v->via.bin.size > max) {
        return fsm__reject(c, YH_EPROTO, "bad command: stamp '%s'", key);
    }
    memcpy(out, v->via.bin.ptr, v->via.bin.size);
    *len = v->via.bin.size;
    return 0;
}

int fsm__rec_str(const msgpack_object *m,
                 const char *key,
                 char *out,
                 size_t size)
{
    const msgpack_object *v = yh_mp_get(m, key);

    out[0] = '\0';
    if (v == NULL || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= size) {
        return YH_ECORRUPT;
    }
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 0;
}

uint64_t fsm__rec_u64(const msgpack_object *m, const char *key)
{
    const msgpack_object *v = yh_mp_get(m, key);

    if (v == NULL) {
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return v->via.u64;
    }
    if (v->type == MSGPACK_OBJECT_BOOLEAN) {
        return v->via.boolean;
    }
    return 0;
}
